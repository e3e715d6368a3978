"""A stand-in for a Telegram server at the transport level (Telegram cannot be reached
from here), speaking MTProto's "full" TCP transport (Telethon's default) with Telethon's
own TL types, in one of two ways a real server answers a client it cannot serve:

    unknown-key   every packet gets transport error -404, what Telegram sends for an
                  authorization key it does not know (a revoked or foreign session)
    foreign-rsa   a key exchange (req_pq_multi) gets a resPQ offering only an RSA key
                  fingerprint Telethon does not know (a server whose public key was not
                  given to the client)

    python mtproto_server.py MODE   prints the port it listens on, then serves until killed
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
import time
import zlib

from telethon.extensions import BinaryReader
from telethon.tl import functions, types


def frame(body: bytes, seq: int) -> bytes:
    head = struct.pack("<ii", len(body) + 12, seq) + body
    return head + struct.pack("<I", zlib.crc32(head))


def plain(data: bytes) -> bytes:
    """An unencrypted MTProto message (auth_key_id 0), as the key exchange uses."""
    msg_id = (int(time.time() * 2**32) & ~3) | 1  # a server's message id: 1 mod 4
    return struct.pack("<qqi", 0, msg_id, len(data)) + data


async def serve(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    seq = 0
    try:
        while True:
            length, _ = struct.unpack("<ii", await reader.readexactly(8))
            body = (await reader.readexactly(length - 8))[:-4]
            if mode == "unknown-key":
                answer = struct.pack("<i", -404)
            else:
                request = BinaryReader(body[20:]).tgread_object()
                if not isinstance(request, functions.ReqPqMultiRequest):
                    answer = struct.pack("<i", -404)
                else:
                    answer = plain(
                        bytes(
                            types.ResPQ(
                                nonce=request.nonce,
                                server_nonce=int.from_bytes(os.urandom(16), "big", signed=True),
                                pq=(17 * 19).to_bytes(2, "big"),
                                server_public_key_fingerprints=[0x1234_5678_9ABC_DEF0],
                            )
                        )
                    )
            writer.write(frame(answer, seq))
            seq += 1
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(mode: str) -> None:
    server = await asyncio.start_server(lambda r, w: serve(mode, r, w), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
