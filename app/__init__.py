"""P2PSIP Phone application: SIP stack, media, phone service, GUI and CLI."""
