"""A local stand-in of the Telegram Bot API, written from its documented wire format
(https://core.telegram.org/bots/api), for aiogram to talk to in tests.

It serves /bot{token}/{method} (JSON, urlencoded or multipart bodies) answering
{"ok": true, "result": ...} or {"ok": false, "error_code": ..., "description": ...,
"parameters": {...}}, and files at /file/bot{token}/{path}. Updates are queued by the
test (`feed`); getUpdates honours `offset` (earlier updates are confirmed and forgotten)
and `timeout` (a long poll answers as soon as updates arrive). Every request is recorded;
failures are scriptable (a blocked chat, a 429, a wrong token, any error once).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from connectors.telegram.text import utf16_len
from tests.services import free_port

TOKEN = "123456789:AAHstandinTOKENstandinTOKENstandin12"
MAX_TEXT_UNITS = 4096
DOWNLOAD_LIMIT = 20 * 1024 * 1024
BLOCKED = "Forbidden: bot was blocked by the user"


@dataclass
class Upload:
    """A file received in a multipart request."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Call:
    """One request the stand-in received."""

    method: str
    token: str
    params: dict[str, Any]
    files: dict[str, Upload] = field(default_factory=dict)


@dataclass
class Failure:
    """An error answer to give once (to the next call of `method`)."""

    method: str
    code: int
    description: str
    parameters: dict[str, Any] | None = None
    after: int = 0  # calls of `method` to let through first


@dataclass
class StoredFile:
    file_id: str
    data: bytes
    file_path: str
    file_size: int


class BotApiStandIn:
    """The stand-in's state: what tests feed it and what it recorded."""

    def __init__(self, token: str = TOKEN) -> None:
        self.tokens = {token}
        self.calls: list[Call] = []
        self.updates: list[tuple[int, str]] = []  # (update_id, exact JSON text), queued
        self.confirmed_offset: int | None = None
        self.failures: list[Failure] = []
        self.blocked_chats: set[int] = set()
        self.migrated: dict[int, int] = {}  # group id -> supergroup id
        self.files: dict[str, StoredFile] = {}
        self.webhook: dict[str, Any] | None = None
        self.downloads: list[str] = []
        self.delivered: list[dict[str, Any]] = []  # the messages "sent" to chats
        self._message_ids: dict[int, int] = {}
        self._arrived = asyncio.Event()
        self._closing = False
        self.base_url = ""

    # --- what tests do -------------------------------------------------------------

    def feed(self, update: dict[str, Any] | str) -> None:
        """Queue an update (a dict, or exact JSON text) for getUpdates."""
        text = update if isinstance(update, str) else json.dumps(update, ensure_ascii=False)
        update_id = json.loads(text)["update_id"]
        self.updates.append((update_id, text))
        self._arrived.set()

    def fail_next(
        self,
        method: str,
        code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
        *,
        after: int = 0,
    ) -> None:
        """Answer a coming call of `method` with this error: the next one, or the one
        after `after` calls that succeed."""
        self.failures.append(Failure(method, code, description, parameters, after))

    def add_file(self, file_id: str, data: bytes, *, file_size: int | None = None) -> None:
        """Make a file available through getFile (file_size may claim more than `data`)."""
        size = len(data) if file_size is None else file_size
        self.files[file_id] = StoredFile(file_id, data, f"documents/{file_id}.bin", size)

    def calls_of(self, method: str) -> list[Call]:
        """The recorded calls of one method, in order."""
        return [call for call in self.calls if call.method == method]

    def pending(self) -> list[int]:
        """Update ids not yet confirmed by an offset."""
        return [update_id for update_id, _ in self.updates]

    # --- the server ----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._api)
        app.router.add_get("/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        return app

    async def _api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        method = request.match_info["method"]
        params, files = await _read_params(request)
        self.calls.append(Call(method, token, params, files))
        if token not in self.tokens:
            return _fail(401, "Unauthorized")
        for failure in self.failures:
            if failure.method == method:
                if failure.after > 0:
                    failure.after -= 1
                    break
                self.failures.remove(failure)
                return _fail(failure.code, failure.description, failure.parameters)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _fail(404, "Not Found: method not found")
        answer: web.Response = await handler(params, files)
        return answer

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] not in self.tokens:
            return web.Response(status=401)
        path = request.match_info["path"]
        self.downloads.append(path)
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.Response(status=404)

    # --- methods ---------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, Upload]) -> web.Response:
        bot_id = int(next(iter(self.tokens)).split(":")[0])
        return _ok(
            {
                "id": bot_id,
                "is_bot": True,
                "first_name": "Stand-in",
                "username": "standin_bot",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, Upload]) -> web.Response:
        offset = _int(params.get("offset"))
        if offset is not None:
            # Bot API: an update is confirmed once getUpdates is called with a higher offset.
            self.confirmed_offset = offset
            self.updates = [(uid, text) for uid, text in self.updates if uid >= offset]
        timeout = _int(params.get("timeout")) or 0
        deadline = time.monotonic() + timeout
        while not self.updates and not self._closing and time.monotonic() < deadline:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
            except TimeoutError:
                break
        limit = _int(params.get("limit")) or 100
        batch = [text for _, text in self.updates[:limit]]
        body = '{"ok":true,"result":[' + ",".join(batch) + "]}"
        return web.Response(text=body, content_type="application/json")

    async def _m_setWebhook(self, params: dict[str, Any], files: dict[str, Upload]) -> web.Response:
        url = str(params.get("url", ""))
        if url and not url.startswith("https://"):
            return _fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = params if url else None
        return _ok(True)

    async def _m_deleteWebhook(
        self, params: dict[str, Any], files: dict[str, Upload]
    ) -> web.Response:
        self.webhook = None
        return _ok(True)

    async def _m_getFile(self, params: dict[str, Any], files: dict[str, Upload]) -> web.Response:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            return _fail(400, "Bad Request: invalid file_id")
        if stored.file_size > DOWNLOAD_LIMIT:
            return _fail(400, "Bad Request: file is too big")
        return _ok(
            {
                "file_id": stored.file_id,
                "file_unique_id": f"u{stored.file_id}",
                "file_size": stored.file_size,
                "file_path": stored.file_path,
            }
        )

    async def _m_sendMessage(
        self, params: dict[str, Any], files: dict[str, Upload]
    ) -> web.Response:
        text = str(params.get("text", ""))
        if not text:
            return _fail(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT_UNITS:
            return _fail(400, "Bad Request: message is too long")
        return self._deliver(params, {"text": text})

    async def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, Upload]) -> web.Response:
        if "photo" not in files:
            return _fail(400, "Bad Request: there is no photo in the request")
        photo = files["photo"]
        size = {"file_id": "sent-photo", "file_unique_id": "sp", "width": 1, "height": 1}
        return self._deliver(params, {"photo": [{**size, "file_size": len(photo.data)}]})

    async def _m_sendDocument(
        self, params: dict[str, Any], files: dict[str, Upload]
    ) -> web.Response:
        if "document" not in files:
            return _fail(400, "Bad Request: there is no document in the request")
        document = files["document"]
        return self._deliver(
            params,
            {
                "document": {
                    "file_id": "sent-document",
                    "file_unique_id": "sd",
                    "file_name": document.filename,
                    "file_size": len(document.data),
                }
            },
        )

    def _deliver(self, params: dict[str, Any], content: dict[str, Any]) -> web.Response:
        chat_id = _int(params.get("chat_id"))
        if chat_id is None:
            return _fail(400, "Bad Request: chat not found")
        if chat_id in self.blocked_chats:
            return _fail(403, BLOCKED)
        if chat_id in self.migrated:
            return _fail(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self.migrated[chat_id]},
            )
        number = self._message_ids.get(chat_id, 0) + 1
        self._message_ids[chat_id] = number
        bot_id = int(next(iter(self.tokens)).split(":")[0])
        chat_type = "private" if chat_id > 0 else "supergroup"
        chat = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "A group"
        message = {
            "message_id": number,
            "from": {"id": bot_id, "is_bot": True, "first_name": "Stand-in"},
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        self.delivered.append(message)
        return _ok(message)


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """The method's parameters however they were sent. Form fields holding JSON (arrays,
    objects: the Bot API's "JSON-serialized" parameters) are decoded."""
    params: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.method != "POST" or not request.can_read_body:
        return params, files
    content_type = request.content_type
    if content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
        return params, files
    if content_type == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                data = await part.read(decode=False)
                kind = part.headers.get("Content-Type", "application/octet-stream")
                files[part.name] = Upload(part.filename, kind, bytes(data))
            else:
                params[part.name] = _maybe_json(await part.text())
        # "attach://<name>": the file was uploaded as the multipart part called <name>.
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                upload = files.get(value.removeprefix("attach://"))
                if upload is not None:
                    files[key] = upload
        return params, files
    form = await request.post()
    for key, value in form.items():
        params[key] = _maybe_json(str(value))
    return params, files


def _maybe_json(value: str) -> Any:
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _fail(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


@asynccontextmanager
async def running(standin: BotApiStandIn | None = None) -> AsyncIterator[BotApiStandIn]:
    """Serve a stand-in on 127.0.0.1 (a free port) for the duration; `base_url` says where."""
    standin = standin or BotApiStandIn()
    runner = web.AppRunner(standin.app(), shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    standin.base_url = f"http://127.0.0.1:{port}"
    try:
        yield standin
    finally:
        standin._closing = True
        standin._arrived.set()
        await runner.cleanup()
