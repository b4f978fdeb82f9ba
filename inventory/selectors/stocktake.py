"""Read paths for stocktakes: the sessions a person may see, and their lines."""
from django.db.models import QuerySet

from inventory.models import StocktakeSession, User
from inventory.selectors.scope import departments_of, visible_to


def sessions_visible_to(user: User) -> QuerySet[StocktakeSession]:
    """The caller's hospital's count sessions; a nurse sees those counting one of her departments."""
    sessions = visible_to(user, StocktakeSession.objects.all())
    mine = departments_of(user)
    if mine is not None:
        sessions = sessions.filter(locations__department__in=mine).distinct()
    return sessions.select_related("hospital", "department", "product", "created_by", "submitted_by", "approved_by")


def expected_hidden(session: StocktakeSession) -> bool:
    """A blind count shows no expected quantity until it is submitted."""
    return session.blind and session.status == StocktakeSession.Status.COUNTING
