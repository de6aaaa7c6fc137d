"""A stateful, offline Stripe emulator for development and tests.

Run it with ``python -m devstack.stripe_emulator --port 12111`` or in-process with
:class:`EmulatorServer`. See docs/stripe-emulator.md.
"""

from .app import create_app
from .chaos import ChaosConfig
from .emulator import Emulator, Settings
from .server import EmulatorServer

__all__ = ["ChaosConfig", "Emulator", "EmulatorServer", "Settings", "create_app"]
