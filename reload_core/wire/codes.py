"""Code points of RFC 6940 §14 (IANA registries) used on the wire."""

from __future__ import annotations

from enum import IntEnum

RELO_TOKEN = 0xD2454C4F
"""``relo_token``: "RELO" with the high bit of the first byte set (§6.3.2)."""

RELOAD_VERSION = 0x0A
"""``version`` 1.0 times ten (§6.3.2)."""

DEFAULT_INITIAL_TTL = 100
"""The default and maximum initial TTL unless the configuration says otherwise (§6.3.2)."""


class ErrorCode(IntEnum):
    """RELOAD Error Codes (§14.9). 0x8000..0xFFFF are reserved (RFC 6940 erratum)."""

    invalidErrorCode = 0x0
    Error_Forbidden = 0x2
    Error_Not_Found = 0x3
    Error_Request_Timeout = 0x4
    Error_Generation_Counter_Too_Low = 0x5
    Error_Incompatible_with_Overlay = 0x6
    Error_Unsupported_Forwarding_Option = 0x7
    Error_Data_Too_Large = 0x8
    Error_Data_Too_Old = 0x9
    Error_TTL_Exceeded = 0xA
    Error_Message_Too_Large = 0xB
    Error_Unknown_Kind = 0xC
    Error_Unknown_Extension = 0xD
    Error_Response_Too_Large = 0xE
    Error_Config_Too_Old = 0xF
    Error_Config_Too_New = 0x10
    Error_In_Progress = 0x11
    Error_Exp_A = 0x12
    Error_Exp_B = 0x13
    Error_Invalid_Message = 0x14


class MessageCode(IntEnum):
    """RELOAD Message Codes (§14.8): requests odd, the answer is the request code + 1."""

    invalidMessageCode = 0x0
    probe_req = 0x1
    probe_ans = 0x2
    attach_req = 0x3
    attach_ans = 0x4
    store_req = 0x7
    store_ans = 0x8
    fetch_req = 0x9
    fetch_ans = 0xA
    find_req = 0xD
    find_ans = 0xE
    join_req = 0xF
    join_ans = 0x10
    leave_req = 0x11
    leave_ans = 0x12
    update_req = 0x13
    update_ans = 0x14
    route_query_req = 0x15
    route_query_ans = 0x16
    ping_req = 0x17
    ping_ans = 0x18
    stat_req = 0x19
    stat_ans = 0x1A
    app_attach_req = 0x1D
    app_attach_ans = 0x1E
    config_update_req = 0x21
    config_update_ans = 0x22
    exp_a_req = 0x23
    exp_a_ans = 0x24
    exp_b_req = 0x25
    exp_b_ans = 0x26
    error = 0xFFFF

    @property
    def is_request(self) -> bool:
        return self != MessageCode.error and self % 2 == 1

    @property
    def answer_code(self) -> MessageCode:
        """The answer paired with this request (§6.3.3)."""
        return MessageCode(self + 1)


def is_request_code(code: int) -> bool:
    """Requests are odd codes in 0x1..0x7FFF (§6.3.3)."""
    return 0 < code < 0x8000 and code % 2 == 1


class DestinationType(IntEnum):
    """§6.3.2.2; 128-255 not allowed (their top bit marks the 16-bit compressed form)."""

    invalidDestinationType = 0
    node = 1
    resource = 2
    opaque_id_type = 3


class ForwardingOptionType(IntEnum):
    """§14.12."""

    invalidForwardingOption = 0
    exp_forward = 1


class ForwardingFlag:
    """ForwardingOption flags (§6.3.2.3)."""

    FORWARD_CRITICAL = 0x01
    DESTINATION_CRITICAL = 0x02
    RESPONSE_COPY = 0x04


class MessageExtensionType(IntEnum):
    """§14.14."""

    invalidMessageExtensionType = 0x0
    exp_ext = 0x1


class CertificateType(IntEnum):
    """TLS CertificateType (RFC 6091); RELOAD defines only X.509 (§6.3.4)."""

    X509 = 0
    OpenPGP = 1


class SignerIdentityType(IntEnum):
    """§6.3.4."""

    invalidSignerIdentityType = 0
    cert_hash = 1
    cert_hash_node_id = 2
    none = 3


class HashAlgorithm(IntEnum):
    """TLS 1.2 HashAlgorithm (RFC 5246 §7.4.1.4.1)."""

    none = 0
    md5 = 1
    sha1 = 2
    sha224 = 3
    sha256 = 4
    sha384 = 5
    sha512 = 6
    intrinsic = 8


class SignatureAlgorithm(IntEnum):
    """TLS 1.2 SignatureAlgorithm (RFC 5246 §7.4.1.4.1, RFC 8422 for ed25519)."""

    anonymous = 0
    rsa = 1
    dsa = 2
    ecdsa = 3
    ed25519 = 7
    ed448 = 8


class OverlayLinkType(IntEnum):
    """RELOAD Overlay Link Types (§14.10)."""

    INVALID_PROTOCOL = 0
    DTLS_UDP_SR = 1
    DTLS_UDP_SR_NO_ICE = 3
    TLS_TCP_FH_NO_ICE = 4
    EXP_LINK = 5


class ProbeInformationType(IntEnum):
    """§14.13."""

    invalidProbeOption = 0
    responsible_set = 1
    num_resources = 2
    uptime = 3
    exp_probe = 4


class DataModel(IntEnum):
    """Data models of §7.2 (§14.7). Not on the wire by number; the configuration names them."""

    SINGLE = 1
    ARRAY = 2
    DICTIONARY = 3


class KindId(IntEnum):
    """Data Kind-IDs registered by RFC 6940 (§14.6) and RFC 7904 (§7)."""

    INVALID = 0x0
    SIP_REGISTRATION = 0x1
    TURN_SERVICE = 0x2
    CERTIFICATE_BY_NODE = 0x3
    CERTIFICATE_BY_USER = 0x10


class ApplicationId(IntEnum):
    """§14.5."""

    INVALID = 0
    SIP = 5060
    SIPS = 5061
