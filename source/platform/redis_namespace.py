"""A Redis client that keeps every key and channel of a sandbox inside its own prefix, enforced per command."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, NoReturn

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.connection import ConnectionPool

from source.platform.key_namespace import KeyNamespace
from source.platform.redis_command_names import NamespaceError, command_name, refusal
from source.platform.redis_commands import ALLOWED_COMMANDS
from source.platform.redis_scripts import trust_script

__all__ = [
    "ALLOWED_COMMANDS",
    "KeyNamespace",
    "NamespaceError",
    "NamespacedPipeline",
    "NamespacedPubSub",
    "NamespacedRedis",
    "command_name",
    "delete_namespace",
    "trust_script",
]


class NamespacedRedis(Redis):
    """A ``redis.asyncio.Redis`` whose every key and channel lives under one prefix.

    It borrows the connections of ``shared`` (the process-wide client), so a sandbox costs no
    sockets of its own. Built on another ``NamespacedRedis``, the prefixes nest.
    """

    namespace: KeyNamespace

    def __init__(self, shared: Redis, prefix: str, *, single_connection_client: bool = False) -> None:
        if isinstance(shared, NamespacedRedis):
            prefix = shared.namespace.prefix + prefix
        # A pool passed in is not ours: closing this client never closes the shared pool.
        super().__init__(connection_pool=shared.connection_pool, single_connection_client=single_connection_client)
        # Same reply parsing as the shared client (RESP2/RESP3 shapes, custom callbacks).
        self.response_callbacks = shared.response_callbacks
        self.namespace = KeyNamespace(
            prefix, encoding=shared.connection_pool.connection_kwargs.get("encoding", "utf-8")
        )

    @property
    def prefix(self) -> str:
        return self.namespace.prefix

    def __repr__(self) -> str:
        return f"<{type(self).__name__}(prefix={self.prefix!r}, {self.connection_pool!r})>"

    # Every command method of redis-py ends in execute_command: the one door to guard.
    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name, rewritten = self.namespace.rewrite(args)
        # (redis-py leaves the methods below unannotated, hence the ignores)
        reply = await super().execute_command(  # type: ignore[no-untyped-call]
            *rewritten, **self.namespace.rewrite_options(options)
        )
        return self.namespace.unprefix_reply(name, reply)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> NamespacedPipeline:
        return NamespacedPipeline(
            self.namespace, self.connection_pool, self.response_callbacks, transaction, shard_hint
        )

    def pubsub(self, **kwargs: Any) -> NamespacedPubSub:
        return NamespacedPubSub(self.namespace, self.connection_pool, event_dispatcher=self._event_dispatcher, **kwargs)

    def client(self) -> NamespacedRedis:
        """A client with one dedicated connection, in the same namespace."""
        return NamespacedRedis(self, "", single_connection_client=True)  # nested with an empty extra prefix

    def monitor(self) -> NoReturn:
        raise refusal("MONITOR")

    def keyspace_notifications(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NamespaceError("keyspace notifications are not available in a sandbox: they are configured server-wide")

    async def drop_all(self, *, batch: int = 500) -> int:
        """Delete every key under this prefix, one SCAN page at a time; returns how many went.

        SCAN walks the keyspace in small steps instead of blocking the server like KEYS would,
        and UNLINK frees the memory in the background. Keys are gone page by page, so a reset
        of one sandbox never stalls the others.
        """
        deleted = 0
        cursor = 0
        while True:
            cursor, names = await self.scan(cursor=cursor, count=batch)
            if names:
                deleted += int(await self.unlink(*names))
            if cursor == 0:
                return deleted


class NamespacedPipeline(Pipeline):
    """A pipeline (or MULTI/EXEC transaction) whose queued commands are namespaced as they are queued.

    A refused command raises at the moment it is queued, so nothing of the batch is sent.
    """

    def __init__(
        self,
        namespace: KeyNamespace,
        connection_pool: ConnectionPool,
        response_callbacks: MutableMapping[str | bytes, Any],
        transaction: bool,
        shard_hint: str | None,
    ) -> None:
        super().__init__(connection_pool, response_callbacks, transaction, shard_hint)
        self.namespace = namespace

    # A pipeline sends commands down two paths: queued for execute(), or at once while it
    # WATCHes keys (and when it loads scripts). Both are guarded.
    def pipeline_execute_command(self, *args: Any, **options: Any) -> NamespacedPipeline:
        _, rewritten = self.namespace.rewrite(args)
        super().pipeline_execute_command(  # type: ignore[no-untyped-call]
            *rewritten, **self.namespace.rewrite_options(options)
        )
        return self

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        name, rewritten = self.namespace.rewrite(args)
        reply = await super().immediate_execute_command(  # type: ignore[no-untyped-call]
            *rewritten, **self.namespace.rewrite_options(options)
        )
        return self.namespace.unprefix_reply(name, reply)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        names = [command_name(args)[0] for args, _ in self.command_stack]
        replies = await super().execute(raise_on_error)
        return [self.namespace.unprefix_reply(name, reply) for name, reply in zip(names, replies, strict=False)]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> NamespacedPipeline:
        return NamespacedPipeline(
            self.namespace, self.connection_pool, self.response_callbacks, transaction, shard_hint
        )

    def pubsub(self, **kwargs: Any) -> NamespacedPubSub:
        return NamespacedPubSub(self.namespace, self.connection_pool, **kwargs)

    def monitor(self) -> NoReturn:
        raise refusal("MONITOR")

    def keyspace_notifications(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NamespaceError("keyspace notifications are not available in a sandbox: they are configured server-wide")


class NamespacedPubSub(PubSub):
    """Pub/Sub in a sandbox: channels get the prefix on the way out and lose it on the way in.

    Everything above the wire (subscribed channels, handlers, messages) uses the names the lab
    chose, so a reconnect re-subscribes through the same door and gets the prefix again.
    """

    def __init__(self, namespace: KeyNamespace, connection_pool: ConnectionPool, **kwargs: Any) -> None:
        handler = kwargs.get("push_handler_func")
        if handler is not None:
            kwargs["push_handler_func"] = lambda response: handler(namespace.unprefix_message(response))
        super().__init__(connection_pool, **kwargs)
        self.namespace = namespace

    async def execute_command(self, *args: Any) -> None:
        _, rewritten = self.namespace.rewrite(args, pubsub=True)
        await super().execute_command(*rewritten)

    async def parse_response(self, block: bool = True, timeout: float = 0) -> Any:  # noqa: ASYNC109 (PubSub's own)
        return self.namespace.unprefix_message(await super().parse_response(block=block, timeout=timeout))


async def delete_namespace(client_or_shared: Redis, prefix: str, *, batch: int = 500) -> int:
    """Delete every key under ``prefix`` (used when a sandbox is reset or released)."""
    namespaced = NamespacedRedis(client_or_shared, prefix)
    try:
        return await namespaced.drop_all(batch=batch)
    finally:
        await namespaced.aclose()
