"""Races on the real database: threads released together, each on its own connection."""
import threading
from collections.abc import Callable

from django.db import connection


def run_together(count: int, work: Callable[[int], object], *, timeout: float = 120) -> list[object]:
    """Run work(i) in `count` threads released at the same moment; return what each returned or raised."""
    barrier = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def thread(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = work(index)
        except Exception as error:  # the test inspects every outcome
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=thread, args=(index,)) for index in range(count)]
    for started in threads:
        started.start()
    for started in threads:
        started.join(timeout=timeout)
    assert not any(started.is_alive() for started in threads), "a thread is stuck (deadlock?)"
    return outcomes
