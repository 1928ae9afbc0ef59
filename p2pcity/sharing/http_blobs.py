"""Moving blobs to and from a node over HTTP: resumable upload, verified streaming download.

Both keep memory bounded: the upload streams the file in pieces, the download
decrypts as the bytes arrive and writes plaintext to ``<out>.part``, renamed
into place only once every record and the ciphertext hash have checked out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import httpx

from p2pcity.chain.entries import DatasetEntry
from p2pcity.client import Client, ClientError
from p2pcity.sharing.grantee import open_dataset
from p2pcity.sharing.uploads import TICKET_HEADER

UPLOAD_PIECE = 256 * 1024
# (bytes done, bytes in all): called as a transfer advances, e.g. to draw a progress bar.
Progress = Callable[[int, int], None]


def _http(client: Client) -> httpx.Client:
    # Blob transfers are long: generous read timeout, short connect timeout.
    return httpx.Client(
        base_url=client.url, timeout=httpx.Timeout(300.0, connect=10.0), headers=client.headers
    )


def _pieces(fh: BinaryIO, start: int, size: int, progress: Progress | None) -> Iterator[bytes]:
    done = start
    while piece := fh.read(UPLOAD_PIECE):
        done += len(piece)
        if progress:
            progress(done, size)
        yield piece


def stored_offset(client: Client, blob_hash: bytes) -> int | None:
    """None if the node stores the blob whole, else the bytes of an interrupted upload it kept."""
    try:
        with _http(client) as http:
            head = http.head(f"/blobs/{blob_hash.hex()}")
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach {client.url}: {exc}") from exc
    return None if head.status_code == 200 else int(head.headers.get("Upload-Offset", "0"))


def upload_blob(
    client: Client,
    path: Path,
    blob_hash: bytes,
    size: int,
    attempts: int = 5,
    progress: Progress | None = None,
    ticket: str | None = None,
) -> str:
    """Upload (or resume uploading) a blob; returns the peer id of the node now holding it.

    ``ticket`` is the ``Upload-Ticket`` (``sharing.uploads.sign_ticket``) a node asks for.
    """
    headers = {TICKET_HEADER: ticket} if ticket else {}
    url = f"/blobs/{blob_hash.hex()}"
    last = ""
    with _http(client) as http:
        for _ in range(attempts):
            try:
                head = http.head(url)
                offset = 0 if head.status_code == 200 else int(head.headers.get("Upload-Offset", "0"))
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    # A stored blob takes no body: the node answers with its holder at once.
                    content = b"" if head.status_code == 200 else _pieces(fh, offset, size, progress)
                    reply = http.put(
                        url, params={"offset": offset, "size": size}, content=content, headers=headers
                    )
            except httpx.TransportError as exc:
                last = f"connection lost ({exc}); resuming"
                continue
            is_json = reply.headers.get("content-type", "").startswith("application/json")
            body = reply.json() if is_json else {}
            if "offset" in body:  # interrupted or out of step: resume from where the node is
                last = str(body.get("error"))
                continue
            if reply.status_code >= 400:
                raise ClientError(str(body.get("error") or f"HTTP {reply.status_code}"), reply.status_code)
            return str(body["holder"])
    raise ClientError(f"upload of blob {blob_hash.hex()[:16]} did not complete: {last}")


def download(
    client: Client, dataset: DatasetEntry, key: bytes, out_path: Path, progress: Progress | None = None
) -> int:
    """Stream the blob, decrypting and verifying as it comes; ``out_path`` appears only if all is well."""
    url = f"/blobs/{dataset.dataset.ciphertext_hash.hex()}"
    partial = out_path.with_name(out_path.name + ".part")
    written = 0
    try:
        params = {"dataset": dataset.dataset_id.hex()}
        with _http(client) as http, http.stream("GET", url, params=params) as reply:
            if reply.status_code >= 400:
                reply.read()
                body = reply.json() if reply.content.startswith(b"{") else {}
                raise ClientError(str(body.get("error") or f"HTTP {reply.status_code}"), reply.status_code)
            # Plaintext: the user's eyes only (0600), and never a leftover file's wider mode.
            partial.unlink(missing_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in open_dataset(dataset, key, reply.iter_bytes()):
                    out.write(chunk)
                    written += len(chunk)
                    if progress:
                        progress(written, dataset.dataset.size)
        os.replace(partial, out_path)
    except httpx.HTTPError as exc:
        raise ClientError(f"download from {client.url} failed: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return written
