"""SIP (RFC 3261) for the phone: a sans-I/O core (messages, transactions, dialogs) and a
thin asyncio layer with the transports. The module contract is in the team's
SIP_CONTRACT.md; the RFCs are the source of truth for every byte."""
