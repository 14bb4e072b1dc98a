#!/usr/bin/python3
"""kmip_admin.py — a KMIP server's administrator, for the tests, through
PyKMIP's client (an implementation independent of cmkfs's).

  kmip_admin.py HOST PORT CERT KEY CA create [BITS] [--inactive]
      a symmetric AES key (Encrypt and Decrypt allowed), activated unless
      --inactive; prints its unique identifier
  kmip_admin.py HOST PORT CERT KEY CA revoke UID
  kmip_admin.py HOST PORT CERT KEY CA destroy UID
"""
import sys
import warnings

warnings.simplefilter("ignore")  # PyKMIP's deprecated ciphers, on import

from kmip.core import enums  # noqa: E402
from kmip.pie.client import ProxyKmipClient  # noqa: E402
from kmip.pie.exceptions import KmipOperationFailure  # noqa: E402


def main(argv):
    if len(argv) < 7:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, cert, key, ca, op = argv[1:7]
    args = argv[7:]
    c = ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key,
                        ca=ca, config_file="/dev/null")
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
        else:
            print(__doc__, file=sys.stderr)
            return 2
    finally:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
