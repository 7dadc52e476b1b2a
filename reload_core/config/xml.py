"""Parse and generate the configuration document (RFC 6940 §11.1, §11.1.1; RFC 7904 §3.4).

Parsing checks, in order: well-formed UTF-8 XML with no DTD (§11.1: "MUST use the
UTF-8 character encoding"; a DTD could only bring entity expansion), the RELAX NG
grammar of §11.1.1 (``schema/reload-config.rng``, loaded with importlib.resources),
then the rules of §11.1's text that the grammar cannot say (see
:mod:`reload_core.config.document`). Each refusal is a :class:`ConfigError` naming the
check; a grammar failure carries libxml2's line and message.

Signatures cover elements byte for byte (§11.1), which no XML tree keeps; the exact
byte span of every element is found with expat's byte offsets and stored in the
``raw`` fields of the model.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import textwrap
import xml.parsers.expat
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from lxml import etree

from reload_core.config.document import (
    CONFIG_BASE_NS,
    CONFIG_CHORD_NS,
    CONFIG_SIP_NS,
    DEFAULT_BOOTSTRAP_PORT,
    AccessControl,
    BootstrapNode,
    ConfigError,
    ConfigErrorReason,
    ConfigSignature,
    ConfigurationDocument,
    DomainRestriction,
    KindBlock,
    KindDescription,
    OverlayConfiguration,
    SelfSignedPermitted,
    SignedConfiguration,
)
from reload_core.wire.codes import DataModel

_B = "{" + CONFIG_BASE_NS + "}"
_C = "{" + CONFIG_CHORD_NS + "}"
_S = "{" + CONFIG_SIP_NS + "}"
_RNG_NS = "http://relaxng.org/ns/structure/1.0"
_OWN_NAMESPACES = frozenset({CONFIG_BASE_NS, CONFIG_CHORD_NS, ""})
_MAX_ERRORS_SHOWN = 3


def _xml_error(message: str) -> ConfigError:
    return ConfigError(ConfigErrorReason.XML, message)


def _value_error(message: str) -> ConfigError:
    return ConfigError(ConfigErrorReason.VALUE, message)


# ---------------------------------------------------------------- schema


def _schema_tree() -> etree._ElementTree:
    ref = resources.files("reload_core.config").joinpath("schema/reload-config.rng")
    return etree.ElementTree(etree.fromstring(ref.read_bytes()))


@cache
def load_schema() -> etree.RelaxNG:
    """The §11.1.1 grammar (with RFC 7904 §3.4's extension), compiled once."""
    return etree.RelaxNG(_schema_tree())


@cache
def _kind_block_schema() -> etree.RelaxNG:
    # The same grammar with a start of kind-block elements, for ConfigUpdate's
    # stand-alone kind-blocks (§6.5.4.1).
    tree = _schema_tree()
    start = tree.getroot().find(f"{{{_RNG_NS}}}start")
    assert start is not None
    for child in list(start):
        start.remove(child)
    element = etree.SubElement(start, f"{{{_RNG_NS}}}element", name="kind-blocks")
    more = etree.SubElement(element, f"{{{_RNG_NS}}}oneOrMore")
    etree.SubElement(more, f"{{{_RNG_NS}}}ref", name="kind-block")
    return etree.RelaxNG(tree)


def _parse_xml(data: bytes) -> etree._ElementTree:
    if not isinstance(data, bytes | bytearray):
        raise TypeError("a configuration document is bytes (UTF-8, §11.1)")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False
    )
    try:
        root = etree.fromstring(bytes(data), parser)
    except etree.XMLSyntaxError as exc:
        raise _xml_error(f"not well-formed XML: line {exc.lineno}: {exc.msg}") from None
    tree = root.getroottree()
    docinfo: Any = tree.docinfo  # lxml-stubs lacks doctype and internalDTD
    encoding = str(docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8"):
        raise _xml_error(f"document is in {encoding}; §11.1 requires UTF-8")
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise _xml_error("document carries a DTD (DOCTYPE), which a configuration document never has")
    return tree


def _validate(schema: etree.RelaxNG, tree: etree._ElementTree) -> None:
    if schema.validate(tree):
        return
    # libxml2 gives some errors (those of interleave and attributes) no line: list the
    # located ones first.
    errors = sorted(schema.error_log, key=lambda e: e.line == 0)
    shown = "; ".join(
        f"line {e.line}: {e.message}" if e.line else e.message for e in errors[:_MAX_ERRORS_SHOWN]
    )
    more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
    raise ConfigError(
        ConfigErrorReason.GRAMMAR, f"document does not match the RELAX NG grammar of §11.1.1: {shown}{more}"
    )


def validate_schema(data: bytes) -> etree._ElementTree:
    """Parse ``data`` and check it against the grammar; the parsed tree, or ConfigError."""
    tree = _parse_xml(data)
    _validate(load_schema(), tree)
    return tree


# ---------------------------------------------------------------- exact byte spans


def element_spans(data: bytes) -> list[tuple[int, int]]:
    """Byte span ``[start, end)`` of every element of ``data``, in document order: from
    the ``<`` of its start tag to the ``>`` of its end tag (or of its empty-element tag).
    The document must already be known well-formed."""
    spans: list[tuple[int, int]] = []
    stack: list[int] = []  # indexes into spans of the open elements
    bare = [False]  # True while nothing has happened since the innermost start tag

    parser = xml.parsers.expat.ParserCreate()

    def start(name: str, attrs: object) -> None:
        stack.append(len(spans))
        spans.append((parser.CurrentByteIndex, -1))
        bare[0] = True

    def end(name: str) -> None:
        at = parser.CurrentByteIndex
        index = stack.pop()
        # expat reports an empty-element tag's end just past its "/>", an end tag's at its
        # "</"; an end tag holds only a name and spaces before its ">".
        stop = at if bare[0] and data[at - 2 : at] == b"/>" else data.index(b">", at) + 1
        spans[index] = (spans[index][0], stop)
        bare[0] = False

    def other(*_: object) -> None:
        bare[0] = False

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = other
    parser.CommentHandler = other
    parser.ProcessingInstructionHandler = other
    parser.StartCdataSectionHandler = other
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise _xml_error(f"not well-formed XML: {exc}") from None
    return spans


def span_map(tree_root: etree._Element, data: bytes) -> dict[etree._Element, tuple[int, int]]:
    """:func:`element_spans` keyed by the elements of ``tree_root``, parsed from ``data``.
    The keys hold the element proxies alive, so lookups with them are stable."""
    elements = list(tree_root.iter(etree.Element))
    spans = element_spans(data)
    if len(spans) != len(elements):  # both parsers saw the same document; never expected
        raise _xml_error("expat and libxml2 disagree on the document's elements")
    return dict(zip(elements, spans, strict=True))


def _span_map(tree_root: etree._Element, data: bytes) -> dict[etree._Element, bytes]:
    return {el: data[a:b] for el, (a, b) in span_map(tree_root, data).items()}


# ---------------------------------------------------------------- values


def _text(el: etree._Element) -> str:
    return (el.text or "").strip()


def _where(el: etree._Element) -> str:
    return f"line {el.sourceline}: {etree.QName(el).localname}"


def _int(el: etree._Element) -> int:
    try:
        return int(_text(el))
    except ValueError:
        raise _value_error(f"{_where(el)}: {_text(el)!r} is not an integer") from None


def _bool_value(text: str, where: str) -> bool:
    # xsd:boolean's lexical forms (§11.1 note).
    text = text.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise _value_error(f"{where}: {text!r} is not an xsd:boolean")


def _bool(el: etree._Element) -> bool:
    return _bool_value(el.text or "", _where(el))


def _base64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        raise _value_error(f"{where}: not base64") from None


def _datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _value_error(f"expiration {text!r} is not an RFC 3339 date-time") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _extension_text(el: etree._Element) -> str:
    detached = copy.deepcopy(el)
    detached.tail = None
    return etree.tostring(detached, method="c14n", exclusive=True, with_comments=False).decode("utf-8")


def _namespace(el: etree._Element) -> str:
    return etree.QName(el).namespace or ""


def _elements(el: etree._Element) -> Iterable[etree._Element]:
    return (c for c in el if isinstance(c.tag, str))


# ---------------------------------------------------------------- parse


def _domain_restriction(el: etree._Element) -> DomainRestriction:
    enable = el.get("enable")
    if enable is None:
        raise _value_error(f"{_where(el)}: the enable attribute is required (RFC 7904 §3.4)")
    patterns: list[str] = []
    for child in _elements(el):
        if child.tag != _S + "pattern":
            raise _value_error(f"{_where(child)}: only sip:pattern belongs in sip:domain-restriction")
        patterns.append(_text(child))
    return DomainRestriction(_bool_value(enable, _where(el)), tuple(patterns))


def _enum_or_str(enum: type[DataModel] | type[AccessControl], text: str) -> DataModel | AccessControl | str:
    if enum is DataModel:
        return DataModel[text] if text in DataModel.__members__ else text
    try:
        return AccessControl(text)
    except ValueError:
        return text


def _kind(el: etree._Element) -> KindDescription:
    values: dict[str, int] = {}
    data_model: DataModel | str = ""
    access_control: AccessControl | str = ""
    restriction: DomainRestriction | None = None
    extensions: list[str] = []
    for child in _elements(el):
        tag = child.tag
        if tag in (_B + "max-count", _B + "max-size", _B + "max-node-multiple"):
            values[etree.QName(child).localname] = _int(child)
        elif tag == _B + "data-model":
            model = _enum_or_str(DataModel, _text(child))
            assert not isinstance(model, AccessControl)
            data_model = model
        elif tag == _B + "access-control":
            policy = _enum_or_str(AccessControl, _text(child))
            assert not isinstance(policy, DataModel)
            access_control = policy
        elif tag == _S + "domain-restriction":
            restriction = _domain_restriction(child)
        elif _namespace(child) not in _OWN_NAMESPACES:
            extensions.append(_extension_text(child))
        else:
            raise _value_error(f"{_where(child)}: not a kind parameter")
    for required in ("max-count", "max-size"):
        if required not in values:
            raise _value_error(f"{_where(el)}: {required} is missing (§11.1)")
    if not data_model or not access_control:
        raise _value_error(f"{_where(el)}: data-model and access-control are required (§11.1)")
    kind_id = el.get("id")
    try:
        parsed_id = None if kind_id is None else int(kind_id.strip())
    except ValueError:
        raise _value_error(f"{_where(el)}: id {kind_id!r} is not an integer") from None
    name = el.get("name")
    return KindDescription(
        name=None if name is None else name.strip(),
        id=parsed_id,
        data_model=data_model,
        access_control=access_control,
        max_count=values["max-count"],
        max_size=values["max-size"],
        max_node_multiple=values.get("max-node-multiple"),
        domain_restriction=restriction,
        extensions=tuple(extensions),
    )


def _kind_block(el: etree._Element, raw: dict[etree._Element, bytes]) -> KindBlock:
    kind_el = el.find(_B + "kind")
    if kind_el is None:
        raise _value_error(f"{_where(el)}: a kind-block has a kind element (§11.1)")
    signature_el = el.find(_B + "kind-signature")
    signature = None if signature_el is None else _base64(signature_el.text or "", _where(signature_el))
    return KindBlock(
        kind=_kind(kind_el),
        kind_signature=signature,
        kind_signature_algorithm=None if signature_el is None else signature_el.get("algorithm"),
        raw_kind=raw.get(kind_el, b""),
        raw=raw.get(el, b""),
    )


_SIMPLE_INT = {
    _B + "node-id-length": "node_id_length",
    _B + "turn-density": "turn_density",
    _B + "max-message-size": "max_message_size",
    _B + "initial-ttl": "initial_ttl",
    _B + "overlay-reliability-timer": "overlay_reliability_timer",
    _C + "chord-update-interval": "chord_update_interval",
    _C + "chord-ping-interval": "chord_ping_interval",
}
_SIMPLE_BOOL = {
    _B + "clients-permitted": "clients_permitted",
    _B + "no-ice": "no_ice",
    _C + "chord-reactive": "chord_reactive",
}
_SIMPLE_STR = {
    _B + "topology-plugin": "topology_plugin",
    _B + "shared-secret": "shared_secret",
}
_LISTS = {
    _B + "enrollment-server": "enrollment_servers",
    _B + "overlay-link-protocol": "overlay_link_protocols",
    _B + "configuration-signer": "configuration_signers",
    _B + "kind-signer": "kind_signers",
    _B + "bad-node": "bad_nodes",
    _B + "mandatory-extension": "mandatory_extensions",
}


def _configuration(el: etree._Element, raw: dict[etree._Element, bytes]) -> OverlayConfiguration:
    try:
        return _configuration_fields(el, raw)
    except ConfigError as exc:
        name = el.get("instance-name", "")
        raise ConfigError(exc.reason, f"configuration {name!r}: {exc.message}") from None


def _configuration_fields(el: etree._Element, raw: dict[etree._Element, bytes]) -> OverlayConfiguration:
    fields: dict[str, Any] = {}
    lists: dict[str, list[str]] = {name: [] for name in _LISTS.values()}
    root_certs: list[bytes] = []
    bootstrap: list[BootstrapNode] = []
    kinds: list[KindBlock] = []
    extensions: list[str] = []
    fields["instance_name"] = el.get("instance-name", "")
    if (expiration := el.get("expiration")) is not None:
        fields["expiration"] = _datetime(expiration)
    if (sequence := el.get("sequence")) is not None:
        try:
            fields["sequence"] = int(sequence.strip())
        except ValueError:
            raise _value_error(f"{_where(el)}: sequence {sequence!r} is not an integer") from None
    fields["extension_attributes"] = tuple(
        (str(name), str(value)) for name, value in el.attrib.items() if str(name).startswith("{")
    )
    for child in _elements(el):
        tag = child.tag
        if tag in _SIMPLE_INT:
            fields[_SIMPLE_INT[tag]] = _int(child)
        elif tag in _SIMPLE_BOOL:
            fields[_SIMPLE_BOOL[tag]] = _bool(child)
        elif tag in _SIMPLE_STR:
            fields[_SIMPLE_STR[tag]] = _text(child)
        elif tag in _LISTS:
            lists[_LISTS[tag]].append(_text(child))
        elif tag == _B + "root-cert":
            root_certs.append(_base64(child.text or "", _where(child)))
        elif tag == _B + "self-signed-permitted":
            fields["self_signed_permitted"] = SelfSignedPermitted(
                value=_bool(child), digest=child.get("digest", "").strip()
            )
        elif tag == _B + "bootstrap-node":
            port = child.get("port")
            try:
                port_number = DEFAULT_BOOTSTRAP_PORT if port is None else int(port.strip())
            except ValueError:
                raise _value_error(f"{_where(child)}: port {port!r} is not an integer") from None
            bootstrap.append(BootstrapNode(child.get("address", "").strip(), port_number))
        elif tag == _B + "required-kinds":
            kinds.extend(_kind_block(k, raw) for k in _elements(child))
        elif tag == _S + "domain-restriction":
            fields["domain_restriction"] = _domain_restriction(child)
        elif _namespace(child) not in _OWN_NAMESPACES:
            extensions.append(_extension_text(child))
        else:  # the grammar admits no other element
            raise _value_error(f"{_where(child)}: unexpected element")
    fields.update({name: tuple(values) for name, values in lists.items()})
    return OverlayConfiguration(
        **fields,
        root_certs=tuple(root_certs),
        bootstrap_nodes=tuple(bootstrap),
        required_kinds=tuple(kinds),
        extensions=tuple(extensions),
    )


def parse_document(data: bytes) -> ConfigurationDocument:
    """Parse and check a configuration document (§11.1). Signatures are kept, not
    verified: see :mod:`reload_core.config.signing`."""
    tree = validate_schema(data)
    root = tree.getroot()
    raw = _span_map(root, bytes(data))
    entries: list[SignedConfiguration] = []
    for child in _elements(root):
        if child.tag == _B + "configuration":
            entries.append(SignedConfiguration(_configuration(child, raw), raw=raw[child]))
        elif child.tag == _B + "signature":
            if not entries:
                raise _value_error(f"{_where(child)}: a signature comes after the configuration it signs")
            signature = ConfigSignature(_base64(child.text or "", _where(child)), child.get("algorithm"))
            last = entries[-1]
            entries[-1] = SignedConfiguration(last.configuration, (*last.signatures, signature), last.raw)
    names = [e.configuration.instance_name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _value_error(f"overlay {duplicates[0]!r} is configured twice in one document")
    return ConfigurationDocument(tuple(entries), raw=bytes(data))


def parse_kind_blocks(data: bytes) -> tuple[KindBlock, ...]:
    """Kind-blocks as ConfigUpdate carries them (§6.5.4.1): one or more ``kind-block``
    elements in UTF-8, default namespace config-base. Checked against the grammar's
    kind-block production."""
    body = bytes(data)
    if body.lstrip().startswith(b"<?xml"):
        body = body[body.index(b"?>") + 2 :]
    prefix = (
        f'<kind-blocks xmlns="{CONFIG_BASE_NS}" xmlns:chord="{CONFIG_CHORD_NS}" xmlns:sip="{CONFIG_SIP_NS}">'
    ).encode()
    wrapped = prefix + body + b"</kind-blocks>"
    tree = _parse_xml(wrapped)
    _validate(_kind_block_schema(), tree)
    raw = _span_map(tree.getroot(), wrapped)
    return tuple(_kind_block(k, raw) for k in _elements(tree.getroot()))


# ---------------------------------------------------------------- generate

_INDENT = "  "


def _layout(parent: etree._Element, depth: int) -> None:
    """Indent ``parent``'s children (ours only: foreign elements keep their whitespace)."""
    children = list(parent)
    if not children:
        return
    inner = "\n" + _INDENT * (depth + 1)
    parent.text = inner
    for child in children:
        child.tail = inner
    children[-1].tail = "\n" + _INDENT * depth


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _base64_text(value: bytes, depth: int) -> str:
    lines = textwrap.wrap(base64.b64encode(value).decode("ascii"), 64)
    if len(lines) <= 1:
        return lines[0] if lines else ""
    inner = "\n" + _INDENT * (depth + 1)
    return inner + inner.join(lines) + "\n" + _INDENT * depth


def _datetime_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _add_domain_restriction(parent: etree._Element, restriction: DomainRestriction, depth: int) -> None:
    el = _sub(parent, _S + "domain-restriction", enable=_bool_text(restriction.enable))
    for pattern in restriction.patterns:
        _sub(el, _S + "pattern", pattern)
    _layout(el, depth)


def _add_kind_block(parent: etree._Element, block: KindBlock, depth: int) -> None:
    el = _sub(parent, _B + "kind-block")
    kind = block.kind
    attrs = {"name": kind.name} if kind.name is not None else {"id": str(kind.id)}
    k = _sub(el, _B + "kind", **attrs)
    _sub(
        k,
        _B + "data-model",
        kind.data_model.name if isinstance(kind.data_model, DataModel) else kind.data_model,
    )
    _sub(k, _B + "access-control", str(kind.access_control))
    if kind.max_node_multiple is not None:
        _sub(k, _B + "max-node-multiple", str(kind.max_node_multiple))
    _sub(k, _B + "max-count", str(kind.max_count))
    _sub(k, _B + "max-size", str(kind.max_size))
    if kind.domain_restriction is not None:
        _add_domain_restriction(k, kind.domain_restriction, depth + 2)
    for ext in kind.extensions:
        k.append(etree.fromstring(ext.encode("utf-8")))
    _layout(k, depth + 1)
    if block.kind_signature is not None:
        sig = _sub(el, _B + "kind-signature", _base64_text(block.kind_signature, depth + 1))
        if block.kind_signature_algorithm is not None:
            sig.set("algorithm", block.kind_signature_algorithm)
    _layout(el, depth)


def _add_configuration(parent: etree._Element, c: OverlayConfiguration, depth: int) -> None:
    attrs = {"instance-name": c.instance_name, "sequence": str(c.sequence)}
    if c.expiration is not None:
        attrs["expiration"] = _datetime_text(c.expiration)
    el = _sub(parent, _B + "configuration", **attrs)
    for name, value in c.extension_attributes:
        el.set(name, value)
    d = depth + 1
    _sub(el, _B + "topology-plugin", c.topology_plugin)
    _sub(el, _B + "node-id-length", str(c.node_id_length))
    for cert in c.root_certs:
        _sub(el, _B + "root-cert", _base64_text(cert, d))
    for url in c.enrollment_servers:
        _sub(el, _B + "enrollment-server", url)
    if c.self_signed_permitted is not None:
        _sub(
            el,
            _B + "self-signed-permitted",
            _bool_text(c.self_signed_permitted.value),
            digest=c.self_signed_permitted.digest,
        )
    for node in c.bootstrap_nodes:
        _sub(el, _B + "bootstrap-node", address=node.address, port=str(node.port))
    _sub(el, _B + "turn-density", str(c.turn_density))
    _sub(el, _B + "clients-permitted", _bool_text(c.clients_permitted))
    _sub(el, _B + "no-ice", _bool_text(c.no_ice))
    _sub(el, _C + "chord-update-interval", str(c.chord_update_interval))
    _sub(el, _C + "chord-ping-interval", str(c.chord_ping_interval))
    _sub(el, _C + "chord-reactive", _bool_text(c.chord_reactive))
    if c.shared_secret is not None:
        _sub(el, _B + "shared-secret", c.shared_secret)
    _sub(el, _B + "max-message-size", str(c.max_message_size))
    _sub(el, _B + "initial-ttl", str(c.initial_ttl))
    _sub(el, _B + "overlay-reliability-timer", str(c.overlay_reliability_timer))
    for protocol in c.overlay_link_protocols:
        _sub(el, _B + "overlay-link-protocol", protocol)
    for signer in c.configuration_signers:
        _sub(el, _B + "configuration-signer", signer)
    for signer in c.kind_signers:
        _sub(el, _B + "kind-signer", signer)
    for bad in c.bad_nodes:
        _sub(el, _B + "bad-node", bad)
    for ext in c.extensions:
        el.append(etree.fromstring(ext.encode("utf-8")))
    for namespace in c.mandatory_extensions:
        _sub(el, _B + "mandatory-extension", namespace)
    if c.domain_restriction is not None:
        _add_domain_restriction(el, c.domain_restriction, d)
    if c.required_kinds:
        kinds = _sub(el, _B + "required-kinds")
        for block in c.required_kinds:
            _add_kind_block(kinds, block, d + 1)
        _layout(kinds, d)
    _layout(el, depth)


def _root_namespaces(document: ConfigurationDocument) -> dict[str | None, str]:
    """Namespace declarations for the ``overlay`` element: ours, then the prefixes the
    extensions use, so that extension elements and attributes keep their prefixes."""
    nsmap: dict[str | None, str] = {None: CONFIG_BASE_NS, "chord": CONFIG_CHORD_NS}
    if any(
        c.domain_restriction is not None or any(k.kind.domain_restriction for k in c.required_kinds)
        for c in document.overlays
    ):
        nsmap["sip"] = CONFIG_SIP_NS
    for c in document.overlays:
        fragments = [*c.extensions, *(e for k in c.required_kinds for e in k.kind.extensions)]
        for fragment in fragments:
            for el in etree.fromstring(fragment.encode("utf-8")).iter(etree.Element):
                for prefix, uri in el.nsmap.items():
                    # A prefix already bound to another namespace stays declared on the fragment.
                    if prefix is not None:
                        nsmap.setdefault(prefix, uri)
    return nsmap


def generate_document(
    document: ConfigurationDocument | OverlayConfiguration | Iterable[OverlayConfiguration],
) -> bytes:
    """The XML of a document (UTF-8, with an XML declaration). Every parameter is written
    out, defaults included; ``signature`` elements follow their configuration.

    Signatures in the model are written as they are, and only stay valid over the
    original bytes: to publish a document, sign the generated bytes with
    :func:`reload_core.config.signing.sign_config`.
    """
    if isinstance(document, OverlayConfiguration):
        document = ConfigurationDocument.of(document)
    elif not isinstance(document, ConfigurationDocument):
        document = ConfigurationDocument.of(*document)
    nsmap: Any = _root_namespaces(document)  # lxml-stubs does not allow the None (default) prefix
    root = etree.Element(_B + "overlay", nsmap=nsmap)
    for entry in document.entries:
        _add_configuration(root, entry.configuration, 1)
        for signature in entry.signatures:
            sig = _sub(root, _B + "signature", _base64_text(signature.value, 1))
            if signature.algorithm is not None:
                sig.set("algorithm", signature.algorithm)
    _layout(root, 0)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"
