#!/usr/bin/python3
"""kmip_admin.py — a KMIP server's administrator, for the tests, through
PyKMIP's client (an implementation independent of cmkfs's).

  kmip_admin.py HOST PORT CERT KEY CA create [BITS] [--inactive]
      a symmetric AES key (Encrypt and Decrypt allowed), activated unless
      --inactive; prints its unique identifier
  kmip_admin.py HOST PORT CERT KEY CA revoke UID
  kmip_admin.py HOST PORT CERT KEY CA destroy UID
  kmip_admin.py HOST PORT CERT KEY CA unwrap TOKEN.json UUID SEGMENT OUT
      the keyslot secret of a cmkfs kmip token, decrypted by the server
      with AES-GCM under the additional data the volume's UUID and data
      segment make ("cmkfs:volume=UUID\ncmkfs:segment=SEGMENT"), written
      to OUT (mode 0600): what cryptsetup needs to open the volume
"""
import base64
import json
import os
import sys
import warnings

warnings.simplefilter("ignore")  # PyKMIP's deprecated ciphers, on import

from kmip.core import enums  # noqa: E402
from kmip.core import objects  # noqa: E402
from kmip.core.messages import messages, payloads  # noqa: E402
from kmip.core.messages.contents import Operation  # noqa: E402
from kmip.pie.client import ProxyKmipClient  # noqa: E402
from kmip.pie.exceptions import KmipOperationFailure  # noqa: E402


def unwrap(c, token_file, uuid, segment, out):
    """Decrypt with the tag and additional data, which PyKMIP's high-level
    client does not send: its request built from PyKMIP's own payload."""
    with open(token_file) as f:
        t = json.load(f)
    aad = ("cmkfs:volume=%s\ncmkfs:segment=%s" % (uuid, segment)).encode()
    payload = payloads.DecryptRequestPayload(
        unique_identifier=t["unique_identifier"],
        data=base64.b64decode(t["ciphertext"]),
        cryptographic_parameters=objects.CryptographicParameters(
            block_cipher_mode=enums.BlockCipherMode.GCM,
            cryptographic_algorithm=enums.CryptographicAlgorithm.AES,
            tag_length=16),
        iv_counter_nonce=base64.b64decode(t["iv"]),
        auth_additional_data=aad,
        auth_tag=base64.b64decode(t["tag"]))
    item = messages.RequestBatchItem(
        operation=Operation(enums.Operation.DECRYPT),
        request_payload=payload)
    proxy = c.proxy
    response = proxy._send_and_receive_message(
        proxy._build_request_message(None, [item]))
    result = response.batch_items[0]
    if result.result_status.value != enums.ResultStatus.SUCCESS:
        print("Decrypt failed: %s" % result.result_message, file=sys.stderr)
        return 1
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(result.response_payload.data)
    return 0


def main(argv):
    if len(argv) < 7:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, cert, key, ca, op = argv[1:7]
    args = argv[7:]
    # KMIP 1.4: the version whose Decrypt carries the GCM tag and the
    # additional data
    c = ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key,
                        ca=ca, config_file="/dev/null",
                        kmip_version=enums.KMIPVersion.KMIP_1_4)
    c.open()
    try:
        if op == "create":
            bits = int(args[0]) if args and args[0].isdigit() else 256
            uid = c.create(enums.CryptographicAlgorithm.AES, bits,
                           cryptographic_usage_mask=[
                               enums.CryptographicUsageMask.ENCRYPT,
                               enums.CryptographicUsageMask.DECRYPT])
            if "--inactive" not in args:
                c.activate(uid)
            print(uid)
        elif op == "revoke":
            c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, args[0])
        elif op == "destroy":
            try:  # an Active key must be revoked first
                c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION,
                         args[0])
            except KmipOperationFailure:
                pass  # it was not Active
            c.destroy(args[0])
        elif op == "unwrap":
            return unwrap(c, *args[:4])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    finally:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
