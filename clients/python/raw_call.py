#!/usr/bin/python3
"""A second, independent gRPC client for the tests: grpc's C core (Debian's python3-grpcio).

Sends one unary call with a request the caller serialised (hex on argv) and prints, as JSON, the status
code, details, the response (hex) and the rich-status trailer (hex). Serialisation stays with the
test, so this client needs no generated stubs: it exercises the transport, framing, status and
trailers of a different gRPC implementation against the daemon.

    raw_call.py ADDRESS /policyengine.v1.PolicyEngineService/Evaluate REQUEST_HEX
"""
import json
import sys

import grpc


def main() -> None:
    address, method, request_hex = sys.argv[1], sys.argv[2], sys.argv[3]
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        out = {"code": "OK", "details": "", "response": "", "status_details": ""}
        try:
            out["response"] = call(bytes.fromhex(request_hex), timeout=30).hex()
        except grpc.RpcError as err:
            out["code"] = err.code().name
            out["details"] = err.details()
            for key, value in err.trailing_metadata() or ():
                if key == "grpc-status-details-bin":
                    out["status_details"] = value.hex()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
