"""A user's roles (their groups) are read once per user instance — a request's user lives for one
request and is asked many times (the menu, the guards, the scopes) — and read again when changed."""
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from inventory.models import Role, User

pytestmark = pytest.mark.django_db


def groups_read(queries: CaptureQueriesContext) -> int:
    return sum('"auth_group"' in query["sql"] for query in queries.captured_queries)


def test_the_roles_are_read_once_and_again_after_a_change_through_the_user(keeper):
    user = User.objects.get(pk=keeper.pk)
    with CaptureQueriesContext(connection) as queries:
        assert user.has_role(Role.WAREHOUSE) and not user.has_role(Role.NURSE)
        assert user.role_names() == {Role.WAREHOUSE.value}
    assert groups_read(queries) == 1

    user.groups.add(Group.objects.get_or_create(name=Role.NURSE.value)[0])
    assert user.has_role(Role.NURSE)
    user.groups.remove(Group.objects.get(name=Role.WAREHOUSE.value))
    assert not user.has_role(Role.WAREHOUSE)
    user.groups.clear()
    assert user.role_names() == frozenset()


@pytest.mark.parametrize("path", ["/", "/stock/", "/alerts/"])
def test_a_page_reads_the_users_roles_once(keeper, path):
    client = Client()
    client.force_login(keeper)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    assert groups_read(queries) == 1
