from dataclasses import dataclass

from inventory.models import Hospital, User


@dataclass(frozen=True)
class Actor:
    """Who does a thing: a user or a device, never free text. Every movement names one."""

    user: User | None = None
    device: "object | None" = None  # devices.models.Device; not imported to keep inventory independent

    def __post_init__(self) -> None:
        if (self.user is None) == (self.device is None):
            raise ValueError("An actor is exactly one user or one device.")

    @property
    def hospital(self) -> Hospital | None:
        return self.user.hospital if self.user is not None else self.device.hospital

    def movement_fields(self) -> dict:
        return {"actor_user": self.user, "actor_device": self.device}
