"""Local development stack: Stripe emulator, embedded Redis, mail catcher, demo supervisor."""
