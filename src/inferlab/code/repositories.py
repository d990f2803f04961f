"""Per-tenant repository indexes: a tenant's ``git_url`` is cloned into a directory of its own,
indexed, and re-indexed incrementally on new commits. Never shared: the key is (tenant, source),
so two tenants naming the same repository each have their own clone and index.

Only repositories on this machine are accepted (an absolute path or a ``file://`` URL); git runs
in a worker thread, the chunking too, so the event loop never waits on them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from inferlab.code.chunking import Chunk, Chunker, language_of
from inferlab.code.repo_index import Embed, RepoIndex
from inferlab.errors import InferLabError, InvalidRequest

MAX_FILE_BYTES = 512 * 1024
log = logging.getLogger("inferlab.code")


class GitError(InvalidRequest):
    default_code = "repository_unavailable"


def local_source(git_url: str) -> str:
    """The local path a ``git_url`` names; anything not on this machine is refused."""
    parsed = urlparse(git_url)
    if parsed.scheme == "file":
        path = parsed.path
    elif parsed.scheme == "" and git_url.startswith("/"):
        path = git_url
    else:
        raise InvalidRequest("Only repositories on this machine can be indexed (an absolute path or a file:// URL)",
                             param="git_url", code="invalid_value")
    if not Path(path).exists():
        raise InvalidRequest(f"No repository at {path}", param="git_url", code="invalid_value")
    return path


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise GitError(f"git {args[0]} failed: {result.stderr.strip()[-300:]}", param="git_url")
    return result.stdout


def _read(clone: Path, paths: list[str]) -> dict[str, str]:
    files = {}
    for path in paths:
        full = clone / path
        if language_of(path) is None or not full.is_file() or full.stat().st_size > MAX_FILE_BYTES:
            continue
        files[path] = full.read_text(encoding="utf-8", errors="replace")
    return files


@dataclass(frozen=True, slots=True)
class IndexReport:
    git_url: str
    commit: str
    files: int
    chunks: int
    reindexed_files: int
    full: bool
    embedded: int = 0
    embedding_error: str | None = None


class TenantRepo:
    """One tenant's clone of one repository and its index."""

    def __init__(self, source: str, clone: Path, chunker: Chunker) -> None:
        self.source = source
        self.clone = clone
        self.index = RepoIndex(Path(source).name.removesuffix(".git"), chunker)
        self.lock = asyncio.Lock()

    def sync(self) -> tuple[str, list[str], list[str], bool]:
        """Bring the clone to the source's HEAD: (commit, changed paths, deleted paths, full index)."""
        if not (self.clone / ".git").exists():
            self.clone.parent.mkdir(parents=True, exist_ok=True)
            result = subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", self.source, str(self.clone)],
                                    capture_output=True, text=True, check=False, timeout=600)
            if result.returncode != 0:
                raise GitError(f"git clone failed: {result.stderr.strip()[-300:]}", param="git_url")
        else:
            _git(self.clone, "fetch", "--quiet", "origin")
            _git(self.clone, "reset", "--quiet", "--hard", "FETCH_HEAD")
        commit = _git(self.clone, "rev-parse", "HEAD").strip()
        old = self.index.commit
        if old is None:
            return commit, _git(self.clone, "ls-files", "-z").split("\0")[:-1], [], True
        if old == commit:
            return commit, [], [], False
        changed: list[str] = []
        deleted: list[str] = []
        for line in _git(self.clone, "diff", "--name-status", "--no-renames", old, commit).splitlines():
            status, _, path = line.partition("\t")
            (deleted if status.startswith("D") else changed).append(path)
        return commit, changed, deleted, False

    def prepare(self) -> tuple[str, dict[str, list[tuple[Chunk, list[str]]]], list[str], bool]:
        """In a worker thread: git, reading and chunking (commit, prepared chunks, removed paths, full)."""
        commit, changed, deleted, full = self.sync()
        files = _read(self.clone, changed)
        return commit, self.index.prepare(files), deleted + [p for p in changed if p not in files], full

    def apply(self, commit: str, prepared: dict[str, list[tuple[Chunk, list[str]]]], removed: list[str],
              full: bool) -> IndexReport:
        """On the event loop: the index changes at once, between two searches."""
        self.index.remove_paths(removed)
        self.index.put_prepared(prepared)
        self.index.commit = commit
        return IndexReport(self.source, commit, len(self.index.paths), self.index.chunk_count, len(prepared), full)


class RepoIndexes:
    def __init__(self, root: Path, chunker: Chunker | None = None) -> None:
        self._root = root
        self._chunker = chunker or Chunker()
        self._repos: dict[tuple[str, str], TenantRepo] = {}

    def _key(self, tenant: str, git_url: str) -> tuple[str, str]:
        return tenant, local_source(git_url)

    def get(self, tenant: str, git_url: str) -> RepoIndex | None:
        try:
            repo = self._repos.get(self._key(tenant, git_url))
        except InvalidRequest:
            return None
        return repo.index if repo is not None and repo.index.commit is not None else None

    def all(self) -> list[tuple[str, TenantRepo]]:
        return [(tenant, repo) for (tenant, _), repo in self._repos.items()]

    def listed(self, tenant: str) -> list[TenantRepo]:
        return [repo for (owner, _), repo in self._repos.items() if owner == tenant]

    async def index(self, tenant: str, git_url: str, embed: Embed | None = None) -> IndexReport:
        key = self._key(tenant, git_url)
        repo = self._repos.get(key)
        if repo is None:
            digest = hashlib.sha256(f"{tenant}\0{key[1]}".encode()).hexdigest()[:20]
            repo = self._repos.setdefault(key, TenantRepo(key[1], self._root / "repos" / digest, self._chunker))
        async with repo.lock:
            report = repo.apply(*await asyncio.to_thread(repo.prepare))
            if embed is not None:
                try:
                    embedded = await repo.index.embed_missing(embed)
                except InferLabError as exc:  # the index still serves, by BM25 and symbols
                    log.warning("embedding %s failed: %s", repo.source, exc.message)
                    return replace(report, embedding_error=exc.message)
                report = replace(report, embedded=embedded)
        return report
