import uuid

import factory

from betting.models import User
from betting.services import user_create
from withdrawals.services import deposit_credit


class UserFactory(factory.django.DjangoModelFactory):
    """A bettor made through the same service as production (so it has a cash account)."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"bettor{n}-{uuid.uuid4().hex[:6]}@example.com")
    password = "secret-pass-123"
    is_staff = False

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return user_create(**kwargs)


def fund(user: User, amount_u: int, *, tx_id: str | None = None) -> None:
    deposit_credit(user=user, amount_u=amount_u, tx_id=tx_id or f"test:{uuid.uuid4()}", source="system")


def role_user(role: str, **kwargs) -> User:
    """A staff user in one of the synced roles (operator, finance, auditor) with exactly its permissions."""
    from django.contrib.auth.models import Group

    from ops.roles import roles_sync

    roles_sync()
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # fresh: no permission cache from before the group
