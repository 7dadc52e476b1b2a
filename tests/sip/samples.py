"""SIP messages for the parser's tests and the fuzz corpus.

The RFC 4475 ("SIP Torture Test Messages") style cases are written here from that RFC's
descriptions (section numbers in the names); Content-Lengths are computed, not copied.
"""

from __future__ import annotations


def msg(head: str, body: bytes = b"") -> bytes:
    """``head`` with LF line ends turned to CRLF; ``{len}`` becomes the body's length."""
    text = head.strip("\n").replace("\n", "\r\n").replace("{len}", str(len(body)))
    return text.encode("utf-8") + b"\r\n\r\n" + body


SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 UDP/TLS/RTP/SAVPF 111 0 8\r\n"
    b"a=rtpmap:111 opus/48000/2\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=ice-ufrag:8hhY\r\n"
    b"a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n"
    b"a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:"
    b"DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n"
    b"a=setup:actpass\r\n"
    b"a=mid:0\r\n"
    b"a=rtcp-mux\r\n"
    b"a=sendrecv\r\n"
    b"a=candidate:1 1 UDP 2130706431 192.0.2.101 49170 typ host\r\n"
)

INVITE = msg(
    """
INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Content-Type: application/sdp
Content-Length: {len}
""",
    SDP,
)

INVITE_COMPACT = msg(
    """
INVITE sip:bob@biloxi.example.com SIP/2.0
v: SIP/2.0/TCP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
t: Bob <sip:bob@biloxi.example.com>
f: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
i: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 1 INVITE
m: <sip:alice@pc33.atlanta.example.com;transport=tcp>;expires=60
k: timer, 100rel
c: application/sdp
l: {len}
""",
    SDP,
)

RESPONSE_180 = msg(
    """
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3
Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1
Record-Route: <sip:server10.biloxi.example.com;lr>, <sip:bigbox3.site3.atlanta.example.com;lr>
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
Contact: <sip:bob@192.0.2.4>
CSeq: 314159 INVITE
Content-Length: 0
"""
)

OK_200 = msg(
    """
SIP/2.0 200 OK
v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060
t: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
f: Alice <sip:alice@atlanta.example.com>;tag=1928301774
i: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
m: <sip:bob@192.0.2.4>
c: application/sdp
l: {len}
""",
    SDP,
)

BYE = msg(
    """
BYE sip:alice@pc33.atlanta.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10
Max-Forwards: 70
From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf
To: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 231 BYE
Content-Length: 0
"""
)

MESSAGE = msg(
    """
MESSAGE sip:user2@domain.example.com SIP/2.0
Via: SIP/2.0/TCP user1pc.domain.example.com;branch=z9hG4bK776sgdkse
Max-Forwards: 70
From: sip:user1@domain.example.com;tag=49583
To: sip:user2@domain.example.com
Call-ID: asd88asd77a@1.2.3.4
CSeq: 1 MESSAGE
Content-Type: text/plain;charset=utf-8
Content-Length: {len}
""",
    "Watson, come here. Ça va? 大丈夫".encode(),
)

REFER = msg(
    """
REFER sip:b@atlanta.example.com SIP/2.0
Via: SIP/2.0/UDP agenta.atlanta.example.com;branch=z9hG4bK2293940223
To: <sip:b@atlanta.example.com>
From: <sip:a@atlanta.example.com>;tag=193402342
Call-ID: 898234234@agenta.atlanta.example.com
CSeq: 93809823 REFER
Max-Forwards: 70
r: <sip:c@atlanta.example.com?Replaces=12345%40192.0.2.1%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>
b: <sip:a@atlanta.example.com>
o: refer;id=93809823
Contact: sip:a@atlanta.example.com
Content-Length: 0
"""
)

NOTIFY = msg(
    """
NOTIFY sip:a@agenta.atlanta.example.com SIP/2.0
Via: SIP/2.0/UDP agentb.atlanta.example.com;branch=z9hG4bK9922ef992-25
To: <sip:a@atlanta.example.com>;tag=193402342
From: <sip:b@atlanta.example.com>;tag=4992881234
Call-ID: 898234234@agenta.atlanta.example.com
CSeq: 1993402 NOTIFY
Max-Forwards: 70
Event: refer;id=93809823
Subscription-State: active;expires=60
Contact: sip:b@agentb.atlanta.example.com
Content-Type: message/sipfrag;version=2.0
Content-Length: {len}
""",
    b"SIP/2.0 100 Trying\r\n",
)

MULTIPART_BODY = (
    b"--boundary1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"\r\n" + SDP + b"\r\n"
    b"--boundary1\r\n"
    b"Content-Type: application/resource-lists+xml\r\n"
    b"Content-Disposition: recipient-list\r\n"
    b"\r\n"
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n<resource-lists/>\r\n'
    b"\x00\xff binary bytes stay as they are \r\n\r\n"
    b"--boundary1--\r\n"
)

# ---------------------------------------------------------------- RFC 4475 §3.1.1: valid

# §3.1.1.1 "A Short Tortuous INVITE": whitespace everywhere, folding, odd case, escapes.
WSINV = msg(
    """
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : {len}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33
""",
    b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n",
)

# §3.1.1.2 "Wide Range of Valid Characters" (control characters as quoted-pairs in To).
INTMETH = msg(
    """
!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;rport;branch=z9hG4bK-.!%66*_+`'~
To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="работающий";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_`'~: 大停電
Content-Length: 0
"""
)

# §3.1.1.3 "Valid Use of the % Escaping Mechanism".
ESC01 = msg(
    """
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {len}
""",
    SDP,
)

# §3.1.1.4 "Escaped Nulls in URIs".
ESCNULL = msg(
    """
REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0
"""
)

# §3.1.1.5 "Use of % When It Is Not an Escape" (method and header name are tokens).
ESC02 = msg(
    """
RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bK209fds
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
CSeq: 98176 RE%47IST%45R
L: 0
"""
)

# §3.1.1.6 "Message with No LWS between Display Name and <".
LWSDISP = msg(
    """
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0
"""
)

# §3.1.1.7 "Long Values in Header Fields".
_LONG = "very" * 100
LONGREQ = msg(
    f"""
INVITE sip:user@example.com SIP/2.0
To: "I have a user name of {"extreme" * 10} proportion"<sip:user@example.com:6000;unknownparam1={_LONG}longvalue;longparam{_LONG}name=shortvalue;{_LONG}longParameterNameWithNoValue>
F: sip:{"amazinglylongcallername" * 8}@example.net;tag=12{"982" * 100}424;unknownheaderparam{"name" * 30}=unknowheaderparam{"value" * 30};unknownValuelessparam{"name" * 30}
Call-ID: longreq.one{"really" * 100}longcallid
CSeq: 3882340 INVITE
Unknown-{"Long" * 40}-Name: unknown-{"long" * 40}-value; unknown-{"long" * 40}-parameter-name = unknown-{"long" * 40}-parameter-value
Via: SIP/2.0/TCP sip33.example.com
v: SIP/2.0/TCP sip32.example.com
V: SIP/2.0/TCP sip31.example.com
Via: SIP/2.0/TCP sip30.example.com
ViA: SIP/2.0/TCP sip29.example.com
VIa: SIP/2.0/TCP sip28.example.com
VIA: SIP/2.0/TCP sip27.example.com
via: SIP/2.0/TCP sip26.example.com
viA: SIP/2.0/TCP sip25.example.com
vIa: SIP/2.0/TCP sip24.example.com
vIA: SIP/2.0/TCP sip23.example.com
V :  SIP/2.0/TCP sip22.example.com
v :  SIP/2.0/TCP sip21.example.com
V  : SIP/2.0/TCP sip20.example.com
v  : SIP/2.0/TCP sip19.example.com
Via: SIP/2.0/TCP sip18.example.com
Via: SIP/2.0/TCP sip17.example.com
Via: SIP/2.0/TCP sip16.example.com
Via: SIP/2.0/TCP sip15.example.com
Via: SIP/2.0/TCP sip14.example.com
Via: SIP/2.0/TCP sip13.example.com
Via: SIP/2.0/TCP sip12.example.com
Via: SIP/2.0/TCP sip11.example.com
Via: SIP/2.0/TCP sip10.example.com
Via: SIP/2.0/TCP sip9.example.com
Via: SIP/2.0/TCP sip8.example.com
Via: SIP/2.0/TCP sip7.example.com
Via: SIP/2.0/TCP sip6.example.com
Via: SIP/2.0/TCP sip5.example.com
Via: SIP/2.0/TCP sip4.example.com
Via: SIP/2.0/TCP sip3.example.com
Via: SIP/2.0/TCP sip2.example.com
Via: SIP/2.0/TCP sip1.example.com
Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch={_LONG}longbranchvalue
Max-Forwards: 70
Contact: <sip:{"amazinglylongcallername" * 8}@host5.example.net>
Content-Type: application/sdp
l: {{len}}
""",
    SDP,
)

# §3.1.1.8 "Extra Trailing Octets in a UDP Datagram": only the first message counts.
DBLREQ = (
    msg(
        """
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKon23t3jfasdf
Content-Length: 0
"""
    )
    + INVITE
)

# §3.1.1.9 "Semicolon-Separated Parameters in URI User Part".
SEMIURI = msg(
    """
OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0
"""
)

# §3.1.1.10 "Varied and Unknown Transport Types".
TRANSPORTS = msg(
    """
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0
"""
)

# §3.1.1.11 "Multipart MIME Message": the body passes through as bytes.
MPART01 = msg(
    """
MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=boundary1
Content-Length: {len}
""",
    MULTIPART_BODY,
)

# §3.1.1.12 "Unusual Reason Phrase" (UTF-8).
UNREASON = msg(
    """
SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>
Content-Length: {len}
""",
    SDP,
)

# §3.1.1.13 "Empty Reason Phrase".
NOREASON = b"SIP/2.0 100 \r\n" + msg(
    """
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
"""
)

# §3.3.2/§3.3.4: unknown URI schemes are syntax the UA judges (416), not the parser.
UNKSCM = msg(
    """
OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0
"""
)
UNKSM2 = msg(
    """
REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0
"""
)

# A tel URI Request-URI (RFC 3966) and a Contact "*" un-REGISTER (§10.2.2).
TELURI = msg(
    """
INVITE tel:+1-201-555-0123;isub=1411 SIP/2.0
Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3-111
Max-Forwards: 70
To: <tel:+1-201-555-0123>
From: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=9802748
Call-ID: telrui.1@[2001:db8::9:1]
CSeq: 1 INVITE
Content-Length: 0
"""
)
STAR = msg(
    """
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKstar
Max-Forwards: 70
To: <sip:alice@example.com>
From: <sip:alice@example.com>;tag=456248
Call-ID: star.843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: *
Expires: 0
Content-Length: 0
"""
)

VALID: dict[str, bytes] = {
    "invite": INVITE,
    "invite_compact": INVITE_COMPACT,
    "response_180": RESPONSE_180,
    "ok_200": OK_200,
    "bye": BYE,
    "message": MESSAGE,
    "refer": REFER,
    "notify": NOTIFY,
    "wsinv": WSINV,
    "intmeth": INTMETH,
    "esc01": ESC01,
    "escnull": ESCNULL,
    "esc02": ESC02,
    "lwsdisp": LWSDISP,
    "longreq": LONGREQ,
    "dblreq": DBLREQ,
    "semiuri": SEMIURI,
    "transports": TRANSPORTS,
    "mpart01": MPART01,
    "unreason": UNREASON,
    "noreason": NOREASON,
    "unkscm": UNKSCM,
    "unksm2": UNKSM2,
    "teluri": TELURI,
    "star": STAR,
}


# ---------------------------------------------------------------- RFC 4475 §3.1.2 and §3.3: invalid

_BASE_HEADERS = """
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: {cid}
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw"""

#: name -> (bytes, status, a phrase the reason must contain). The request-line cases keep
#: readable Via/From/To/Call-ID/CSeq so that a 400 can be built from them.
INVALID: dict[str, tuple[bytes, int, str]] = {
    # §3.1.2.1: extraneous header field separators.
    "badinv01": (
        msg(
            """
INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: 0
"""
        ),
        400,
        "Bad From header: bad parameter",
    ),
    # §3.1.2.2: Content-Length larger than the message.
    "clerr": (
        msg(
            "INVITE sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.format(cid="clerr.0ha0isnda977644900765@192.0.2.15")
            + "\nContent-Length: 9999",
            SDP,
        ),
        400,
        "Content-Length 9999 larger than the body",
    ),
    # §3.1.2.3: negative Content-Length.
    "ncl": (
        msg(
            "INVITE sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.format(cid="ncl.0ha0isndaksdj2193423r542w35")
            + "\nContent-Length: -999",
            SDP,
        ),
        400,
        "Bad Content-Length header",
    ),
    # §3.1.2.4: overlarge scalar values.
    "scalar02": (
        msg(
            """
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
Contact: <sip:user@host129.example.com>;expires=280297596632815
Content-Length: 0
"""
        ),
        400,
        "CSeq header: sequence number too large",
    ),
    "maxforwards300": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.replace("Max-Forwards: 7", "Max-Forwards: 300")
            .replace("8 INVITE", "8 OPTIONS")
            .format(cid="mf.1")
            + "\nl: 0"
        ),
        400,
        "Bad Max-Forwards header",
    ),
    # §3.1.2.6: unterminated quoted string in a display name.
    "quotbal": (
        msg(
            """
INVITE sip:user@example.com SIP/2.0
To: "Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.15:5060;branch=z9hG4bKkdjuw380234
l: 0
"""
        ),
        400,
        "Bad To header: unterminated quoted display name",
    ),
    # §3.1.2.7: <> around the Request-URI.
    "ltgtruri": (
        msg(
            "INVITE <sip:user@example.com> SIP/2.0"
            + _BASE_HEADERS.format(cid="ltgtruri.1@192.0.2.5")
            + "\nl: 0"
        ),
        400,
        "Bad Request-URI",
    ),
    # §3.1.2.8: LWS inside the Request-URI.
    "lwsruri": (
        msg(
            "INVITE sip:user@example.com; lr SIP/2.0"
            + _BASE_HEADERS.format(cid="lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423")
            + "\nl: 0"
        ),
        400,
        "Request line is not",
    ),
    # §3.1.2.9: several SP between the request line's elements.
    "lwsstart": (
        msg(
            "INVITE  sip:user@example.com  SIP/2.0"
            + _BASE_HEADERS.format(cid="lwsstart.dfknq234oi243099adsdfnawe3@example.com")
            + "\nl: 0"
        ),
        400,
        "Request line is not",
    ),
    # §3.1.2.10: SP at the end of the request line.
    "trws": (
        msg(
            "OPTIONS sip:remote-target@example.com SIP/2.0  "
            + _BASE_HEADERS.replace("8 INVITE", "8 OPTIONS").format(cid="trws.oicu34958239neffasdhr2345r")
            + "\nl: 0"
        ),
        400,
        "Request line is not",
    ),
    # §3.1.2.11: escaped headers in the Request-URI.
    "escruri": (
        msg(
            "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0"
            + _BASE_HEADERS.format(cid="escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5")
            + "\nl: 0"
        ),
        400,
        "headers not allowed in a Request-URI",
    ),
    # §3.1.2.13: a name-addr URI with '?' not in <>.
    "regbadct": (
        msg(
            """
REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0
"""
        ),
        400,
        "Bad Contact header",
    ),
    # §3.1.2.14: spaces inside an addr-spec.
    "badaspec": (
        msg(
            """
OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423
To: "Watson, Thomas" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0
"""
        ),
        400,
        "Bad To header",
    ),
    # §3.1.2.15: non-token characters in an unquoted display name.
    "baddn": (
        msg(
            """
OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0
"""
        ),
        400,
        "Bad From header: bad display name",
    ),
    # §3.1.2.16: another SIP version.
    "badvers": (
        msg(
            "OPTIONS sip:t.watson@example.org SIP/7.0"
            + _BASE_HEADERS.replace("8 INVITE", "8 OPTIONS").format(cid="badvers.31415@c.example.com")
            + "\nl: 0"
        ),
        505,
        "SIP version SIP/7.0 not supported",
    ),
    # §3.1.2.17: request line and CSeq method mismatch.
    "mismatch01": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.format(cid="mismatch01.dj0234sxdfl3")
            + "\nl: 0"
        ),
        400,
        "CSeq method INVITE does not match request method OPTIONS",
    ),
    # §3.1.2.18: unknown method with a CSeq method mismatch.
    "mismatch02": (
        msg(
            "NEWMETHOD sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.format(cid="mismatch02.dl3ndsfw34")
            + "\nl: 0"
        ),
        400,
        "does not match request method NEWMETHOD",
    ),
    # §3.3.1: missing required header fields.
    "insuf": (
        msg(
            """
INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: {len}
""",
            SDP,
        ),
        400,
        "Missing From header",
    ),
    # §3.3.8: several values in single-value headers.
    "multi01": (
        msg(
            """
INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
l: 0
"""
        ),
        400,
        "More than one CSeq header (lines 5 and 7)",
    ),
    # §3.3.9: several Content-Length values.
    "mcl01": (
        msg(
            """
OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain
""",
            b"There's no way to know how many octets are supposed to be here.",
        ),
        400,
        "More than one Content-Length header (lines 7 and 9)",
    ),
    "bad_utf8": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.replace("8 INVITE", "8 OPTIONS").format(cid="utf8.1")
            + "\nSubject: caf@@\nl: 0"
        ).replace(b"@@", b"\xe9"),
        400,
        "Header bytes are not UTF-8",
    ),
    "folded_first": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0\n continued"
            + _BASE_HEADERS.replace("8 INVITE", "8 OPTIONS").format(cid="fold.1")
            + "\nl: 0"
        ),
        400,
        "Continuation line before any header (line 2)",
    ),
    "no_colon": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.replace("8 INVITE", "8 OPTIONS").format(cid="nocolon.1")
            + "\nJust some words\nl: 0"
        ),
        400,
        "Header line without a name and ':' (line 8)",
    ),
    "bare_lf": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.replace("8 INVITE", "8 OPTIONS").format(cid="lf.1")
            + "\nl: 0"
        ).replace(b"Max-Forwards: 7\r\n", b"Max-Forwards: 7\n"),
        400,
        "Line not ended by CRLF (line 4)",
    ),
    "no_max_forwards": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.replace("Max-Forwards: 7\n", "")
            .replace("8 INVITE", "8 OPTIONS")
            .format(cid="mf.2")
            + "\nl: 0"
        ),
        400,
        "Missing Max-Forwards header",
    ),
    "bad_via_port": (
        msg(
            "OPTIONS sip:user@example.com SIP/2.0"
            + _BASE_HEADERS.replace("192.0.2.15;", "192.0.2.15:99999;")
            .replace("8 INVITE", "8 OPTIONS")
            .format(cid="via.2")
            + "\nl: 0"
        ),
        400,
        "Bad Via header: bad port",
    ),
    "tel_local_no_context": (
        msg("INVITE tel:7042 SIP/2.0" + _BASE_HEADERS.format(cid="tel.2") + "\nl: 0"),
        400,
        "local tel number without phone-context",
    ),
}

#: Responses that are malformed: to be dropped (no response to a response).
INVALID_RESPONSES: dict[str, tuple[bytes, str]] = {
    # §3.1.2.19: overlarge response code.
    "bigcode": (
        msg(
            """
SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>
"""
        ),
        "Bad status line",
    ),
    # §3.1.2.5: overlarge scalar values in a response.
    "scalarlg": (
        msg(
            """
SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture "In Progress"
Content-Length: 0
"""
        ),
        "sequence number too large",
    ),
}
