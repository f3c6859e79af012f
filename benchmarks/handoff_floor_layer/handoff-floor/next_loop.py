"""The hand-off floor's Python half: /event/next on _socket until SHUTDOWN, one line at each end.

argv[1]: the identifier the shell registered under. Nothing is imported but what the
interpreter has loaded already (_socket is built in), so this is Python's start and little more.
"""

import _socket
import os
import sys

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
request = (
    "GET /2020-01-01/extension/event/next HTTP/1.1\r\n"
    f"Host: {host}:{port}\r\nLambda-Extension-Identifier: {sys.argv[1]}\r\n"
    "Connection: close\r\n\r\n"
).encode()
os.write(1, b'{"handoff-floor":"init"}\n')
while True:
    connection = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    connection.connect((host, int(port)))
    connection.sendall(request)
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    connection.close()
    if b'"SHUTDOWN"' in answer:
        os.write(1, b'{"handoff-floor":"shutdown"}\n')
        break
