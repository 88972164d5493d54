"""A Redis client that keeps every key and channel of a sandbox inside its own prefix, enforced per command,
and (given a lease) gives every key it may leave without an expiry the sandbox's lease deadline."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, NoReturn

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.connection import ConnectionPool

from source.platform.key_namespace import KeyNamespace
from source.platform.redis_command_names import NamespaceError, command_name, refusal
from source.platform.redis_commands import ALLOWED_COMMANDS
from source.platform.redis_lease import KeyLease, needs_lease
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
    sockets of its own. Built on another ``NamespacedRedis``, the prefixes nest. With a ``lease``,
    a write that may leave a key without an expiry also sets the lease's deadline on it, in the
    same round trip (see :mod:`source.platform.redis_lease`).
    """

    namespace: KeyNamespace
    lease: KeyLease | None

    def __init__(
        self, shared: Redis, prefix: str, *, single_connection_client: bool = False, lease: KeyLease | None = None
    ) -> None:
        if isinstance(shared, NamespacedRedis):
            prefix = shared.namespace.prefix + prefix
            lease = lease or shared.lease
        self.lease = lease
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
        name, rewritten, keys = self.namespace.rewrite_keys(args)
        options = self.namespace.rewrite_options(options)
        if self.lease is not None and keys and needs_lease(name, rewritten):
            reply = await self._with_lease(rewritten, keys, self.lease.deadline_ms, options)
            self.lease.renew_soon()
        else:
            # (redis-py leaves the methods below unannotated, hence the ignores)
            reply = await super().execute_command(*rewritten, **options)  # type: ignore[no-untyped-call]
        return self.namespace.unprefix_reply(name, reply)

    async def _with_lease(self, command: list[Any], keys: list[Any], deadline_ms: int, options: Any) -> Any:
        """The command, then ``PEXPIREAT key deadline NX`` for each of its keys: one round trip."""
        if self.single_connection_client:  # its one connection, in order (a pipeline would take another)
            reply = await super().execute_command(*command, **options)  # type: ignore[no-untyped-call]
            for key in keys:
                await super().execute_command("PEXPIREAT", key, deadline_ms, "NX")  # type: ignore[no-untyped-call]
            return reply
        pipe = Pipeline(self.connection_pool, self.response_callbacks, transaction=False, shard_hint=None)
        async with pipe:
            pipe.pipeline_execute_command(*command, **options)  # type: ignore[no-untyped-call]
            for key in keys:
                pipe.pipeline_execute_command("PEXPIREAT", key, deadline_ms, "NX")  # type: ignore[no-untyped-call]
            replies = await pipe.execute(raise_on_error=False)
        if isinstance(replies[0], BaseException):
            raise replies[0]  # as the command alone would have raised it
        return replies[0]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> NamespacedPipeline:
        return NamespacedPipeline(
            self.namespace, self.connection_pool, self.response_callbacks, transaction, shard_hint, self.lease
        )

    def pubsub(self, **kwargs: Any) -> NamespacedPubSub:
        return NamespacedPubSub(self.namespace, self.connection_pool, event_dispatcher=self._event_dispatcher, **kwargs)

    def client(self) -> NamespacedRedis:
        """A client with one dedicated connection, in the same namespace (and the same lease)."""
        return NamespacedRedis(self, "", single_connection_client=True)  # nested with an empty extra prefix

    def without_lease(self) -> NamespacedRedis:
        """The same namespace without the lease: for the lease's own renewal, which sets every expiry itself."""
        view = NamespacedRedis(self, "")  # nested with an empty extra prefix, which inherits the lease
        view.lease = None
        return view

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

    A refused command raises at the moment it is queued, so nothing of the batch is sent. With a
    lease, the keys its commands may leave without an expiry get the lease's ``PEXPIREAT … NX`` at
    the end of the batch (inside the transaction, if it is one); their replies are not returned.
    """

    def __init__(
        self,
        namespace: KeyNamespace,
        connection_pool: ConnectionPool,
        response_callbacks: MutableMapping[str | bytes, Any],
        transaction: bool,
        shard_hint: str | None,
        lease: KeyLease | None = None,
    ) -> None:
        super().__init__(connection_pool, response_callbacks, transaction, shard_hint)
        self.namespace = namespace
        self.lease = lease
        self._leased: dict[Any, None] = {}  # the keys to lease, in order, once each

    # A pipeline sends commands down two paths: queued for execute(), or at once while it
    # WATCHes keys (and when it loads scripts). Both are guarded.
    def pipeline_execute_command(self, *args: Any, **options: Any) -> NamespacedPipeline:
        name, rewritten, keys = self.namespace.rewrite_keys(args)
        if not self.command_stack:  # a new batch (the last one was sent, or reset): its own keys only
            self._leased = {}
        super().pipeline_execute_command(  # type: ignore[no-untyped-call]
            *rewritten, **self.namespace.rewrite_options(options)
        )
        if self.lease is not None and keys and needs_lease(name, rewritten):
            self._leased.update(dict.fromkeys(keys))
        return self

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        name, rewritten = self.namespace.rewrite(args)
        reply = await super().immediate_execute_command(  # type: ignore[no-untyped-call]
            *rewritten, **self.namespace.rewrite_options(options)
        )
        return self.namespace.unprefix_reply(name, reply)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        names = [command_name(args)[0] for args, _ in self.command_stack]
        leased, self._leased = list(self._leased), {}
        if leased and self.lease is not None and self.command_stack:
            deadline = self.lease.deadline_ms
            for key in leased:  # queued past the namespace's door: the keys already carry the prefix
                super().pipeline_execute_command("PEXPIREAT", key, deadline, "NX")  # type: ignore[no-untyped-call]
        replies = await super().execute(raise_on_error)
        if leased and self.lease is not None:
            self.lease.renew_soon()
        return [self.namespace.unprefix_reply(name, reply) for name, reply in zip(names, replies, strict=False)]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> NamespacedPipeline:
        return NamespacedPipeline(
            self.namespace, self.connection_pool, self.response_callbacks, transaction, shard_hint, self.lease
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
