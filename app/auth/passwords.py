"""argon2 password hashing (pwdlib), off the event loop.

argon2 is slow on purpose (tens of milliseconds of CPU per hash). On the event loop a burst of
logins would stall every other request of the process, withdrawals included; so the async
functions hash in a small thread pool of their own (argon2 releases the GIL). It has one
thread fewer than the machine has cores, so a login flood queues there and leaves a core to
the event loop instead of starving it.
"""

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the user does not exist, so unknown users cost the same time.
DUMMY_HASH = _hasher.hash("creditpool-dummy-password")
_pool = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="argon2"
)


def hash_password(password: str) -> str:
    """Blocking: for commands and scripts; request handlers use hash_password_off_loop."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


async def hash_password_off_loop(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool, _hasher.hash, password)


async def verify_password_off_loop(password: str, password_hash: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, _hasher.verify, password, password_hash)
