import pytest

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, hospital):
    superuser = factories.UserFactory(username="root", hospital=None, is_superuser=True, is_staff=True)
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("path", ["inventory/movement", "inventory/unit", "inventory/product", "devices/device",
                                  "devices/deviceevent", "inventory/user", "inventory/consumption"])
def test_admin_lists_open_for_it_staff(admin_client_, path):
    assert admin_client_.get(f"/admin/{path}/").status_code == 200


def test_the_ledger_cannot_be_edited_in_the_admin(admin_client_):
    assert admin_client_.get("/admin/inventory/movement/add/").status_code == 403


def test_settlement_statements_are_neither_added_nor_changed_in_the_admin(admin_client_):
    """A statement is issued only with its ISSUED step (services.settlement_workflow): not from here."""
    assert admin_client_.get("/admin/inventory/suppliersettlement/").status_code == 200
    assert admin_client_.get("/admin/inventory/suppliersettlement/add/").status_code == 403
    assert admin_client_.get("/admin/inventory/suppliersettlementevent/add/").status_code in (403, 404)
