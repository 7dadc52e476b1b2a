"""Enrollment (RFC 6940 §11.2, §11.3): the operator's configuration and enrollment server,
its accounts, and the client that obtains a node certificate.

- :mod:`~reload_core.enrollment.users`: accounts, scrypt password hashes, Node-IDs;
- :mod:`~reload_core.enrollment.server`: the HTTPS configuration + enrollment server;
- :mod:`~reload_core.enrollment.client`: :func:`enroll`;
- :mod:`~reload_core.enrollment.errors`: the §11.3 refusal tokens.
"""

from reload_core.enrollment.errors import EnrollmentError, EnrollmentToken

__all__ = ["EnrollmentError", "EnrollmentToken"]
