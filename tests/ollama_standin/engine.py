"""llama-cpp-python wrapper: one ``Llama`` per engine, all calls serialised by a lock, run in worker threads.

A generation runs in a daemon thread and reports through ``emit(item)`` (thread-safe callback):

* ``("text", str)``: a piece of generated text;
* ``("logprobs", list)``: with ``job.logprobs``, the entries of the tokens of the text sent so far, in
  Ollama's shape (``{token, logprob, top_logprobs: [{token, logprob}]}``), before the text they belong to;
* ``("done", stats)``: end; ``stats`` has ``done_reason`` and the Ollama metrics (ns), ``context`` if asked;
* ``("error", status, message)``: failure (before any text: an HTTP error; after: a mid-stream error line);
* ``("cancelled",)``: the request was abandoned (``stop`` was set) before or during generation.

``stop`` (a ``threading.Event``) is checked between tokens (inside llama.cpp's sampling loop through a
stopping criterion), so a client disconnect stops generation within one token.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .faults import EventLog

Emit = Callable[[tuple[Any, ...]], None]
NUM_KEEP = 4


class PromptError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def too_long_message(n_tokens: int, n_ctx: int) -> str:
    return (
        "the prompt is longer than the context length currently available to the model; "
        f"try a shorter prompt or a larger num_ctx (prompt: {n_tokens} tokens, num_ctx: {n_ctx})"
    )


@dataclass
class GenJob:
    rid: int
    name: str
    build_tokens: Callable[[Any, int], list[int]]  # (llm, n_ctx) -> prompt tokens; may raise PromptError
    sampling: dict[str, Any]
    max_tokens: int | None
    fmt: Any = None  # None, "json" or a JSON-schema dict
    forced: str | None = None
    num_ctx: int | None = None
    unload_after: bool = False
    want_context: bool = False
    #: None: no logprobs; N: each token's logprob and its N most likely alternatives (Ollama's
    #: ``logprobs: true`` + ``top_logprobs: N``).
    logprobs: int | None = None
    t_start: int = field(default_factory=time.perf_counter_ns)


class LogprobRecorder:
    """Per-token logprobs from the raw logits, as Ollama computes them (log-softmax, temperature 1).

    A llama-cpp logits processor sees the logits before each sample but not the token then chosen;
    the next call sees it as the last input id. So ``before_sample`` resolves the previous position,
    and the caller sends the text of a token only once its entry exists (one token held back).
    """

    def __init__(self, llm: Any, top: int) -> None:
        self.llm = llm
        self.top = top
        self._previous: Any = None
        self.entries: list[dict[str, Any]] = []

    def token_text(self, token: int) -> str:
        return bytes(self.llm.detokenize([token])).decode("utf-8", errors="replace")

    def before_sample(self, ids: Any, logits: Any) -> None:
        if self._previous is not None and len(ids):
            self.entries.append(self._entry(int(ids[-1]), self._previous))
        values = np.asarray(logits, dtype=np.float64)
        peak = values.max()
        self._previous = values - (peak + np.log(np.exp(values - peak).sum()))

    def _entry(self, token: int, lp: Any) -> dict[str, Any]:
        top = []
        if self.top:
            best = np.argpartition(-lp, self.top)[: self.top]
            best = best[np.argsort(-lp[best])]
            top = [{"token": self.token_text(int(t)), "logprob": float(lp[t])} for t in best]
        return {"token": self.token_text(token), "logprob": float(lp[token]), "top_logprobs": top}

    def forced(self, token: int) -> dict[str, Any]:
        """A marker's token: certain (logprob 0), its own only alternative."""
        text = self.token_text(token)
        return {"token": text, "logprob": 0.0, "top_logprobs": [{"token": text, "logprob": 0.0}][: self.top]}

    def take(self) -> list[dict[str, Any]]:
        out, self.entries = self.entries, []
        return out


class LlamaEngine:
    def __init__(
        self,
        path: str,
        n_ctx: int,
        n_threads: int,
        events: EventLog,
        embedding: bool = False,
        label: str = "chat",
    ):
        self.path = path
        self.default_ctx = n_ctx
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.embedding = embedding
        self.events = events
        self.label = label
        self.lock = threading.Lock()  # serialises every call into the Llama object
        self.llm: Any = None
        self.loaded_at = 0  # perf_counter_ns of the end of the last load
        self.last_name: str | None = None
        self.last_used = 0.0  # time.time()
        self.keep_alive = 300.0
        self._grammars: dict[str, Any] = {}
        self._count_lock = threading.Lock()
        self.waiting = 0
        self.running = 0

    # ------------------------------------------------------------------ loading
    def _load_locked(self, n_ctx: int | None = None) -> int:
        """Make sure the model is loaded (lock held). Returns the load time in ns (0 if already loaded)."""
        want = n_ctx or self.default_ctx
        if self.llm is not None and self.n_ctx == want:
            return 0
        if self.llm is not None:
            self._unload_locked()
        t0 = time.perf_counter_ns()
        import llama_cpp

        kwargs: dict[str, Any] = dict(
            model_path=self.path,
            n_ctx=want,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            verbose=False,
        )
        if self.embedding:
            kwargs.update(
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                n_batch=want,
                n_ubatch=want,
            )
        else:
            kwargs.update(n_batch=min(512, want))
        self.llm = llama_cpp.Llama(**kwargs)
        self.n_ctx = want
        self.loaded_at = time.perf_counter_ns()
        dt = self.loaded_at - t0
        self.events.add("load", engine=self.label, n_ctx=want, load_duration=dt)
        return dt

    def _unload_locked(self) -> None:
        if self.llm is None:
            return
        with contextlib.suppress(Exception):
            self.llm.close()
        self.llm = None
        self.events.add("unload", engine=self.label)

    def load(self, n_ctx: int | None = None, t_wait: int | None = None) -> int:
        t_wait = t_wait or time.perf_counter_ns()
        with self.lock:
            return self._load_duration(self._load_locked(n_ctx), t_wait)

    def _load_duration(self, own: int, t_wait: int) -> int:
        if own:
            return own
        # a background load that finished while this request waited counts as its load time
        if self.loaded_at > t_wait:
            return self.loaded_at - t_wait
        return 0

    def unload(self) -> None:
        with self.lock:
            self._unload_locked()

    def preload_async(self) -> None:
        threading.Thread(target=self.load, name=f"standin-preload-{self.label}", daemon=True).start()

    @property
    def loaded(self) -> bool:
        return self.llm is not None

    def touch(self, name: str, keep_alive: float | None) -> None:
        self.last_name = name
        self.last_used = time.time()
        if keep_alive is not None:
            self.keep_alive = keep_alive

    # ------------------------------------------------------------------ helpers
    def _grammar(self, fmt: Any) -> Any:
        import llama_cpp
        from llama_cpp.llama_grammar import JSON_GBNF

        key = fmt if isinstance(fmt, str) else json.dumps(fmt, sort_keys=True)
        g = self._grammars.get(key)
        if g is None:
            if fmt == "json":
                g = llama_cpp.LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            else:
                g = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False)
            self._grammars[key] = g
        return g

    def tokenize(self, text: str, add_bos: bool = False) -> list[int]:
        with self.lock:
            self._load_locked()
            return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    # ------------------------------------------------------------------ generation
    def generate(self, job: GenJob, emit: Emit, stop: threading.Event) -> None:
        """Worker-thread entry point."""
        t_wait = time.perf_counter_ns()
        with self._count_lock:
            self.waiting += 1
        try:
            with self.lock:
                with self._count_lock:
                    self.waiting -= 1
                    self.running += 1
                try:
                    self._generate_locked(job, emit, stop, t_wait)
                finally:
                    with self._count_lock:
                        self.running -= 1
        except Exception as e:  # pragma: no cover - defensive
            emit(("error", 500, f"llama runner process has terminated: {e}"))

    def _generate_locked(self, job: GenJob, emit: Emit, stop: threading.Event, t_wait: int) -> None:
        if stop.is_set():
            self.events.add("generation_stopped", id=job.rid, reason="cancelled_before_start", tokens=0)
            emit(("cancelled",))
            return
        try:
            load_ns = self._load_duration(self._load_locked(job.num_ctx), t_wait)
        except Exception as e:
            emit(("error", 500, f"llama runner process has terminated: {e}"))
            return
        llm = self.llm
        try:
            prompt_tokens = job.build_tokens(llm, self.n_ctx)
        except PromptError as e:
            emit(("error", e.status, e.message))
            return
        grammar = None
        if job.fmt is not None and job.forced is None:
            try:
                grammar = self._grammar(job.fmt)
            except Exception as e:
                emit(("error", 400, f"invalid JSON schema in format: {e}"))
                return

        t_prompt = time.perf_counter_ns()
        state = {"samples": 0, "t_first": 0}
        text_parts: list[str] = []
        reason = "stop"
        finished = False

        if job.forced is not None:
            # deterministic "generation" of the marker text (see prompt.py), streamed token by token
            toks = llm.tokenize(job.forced.encode("utf-8"), add_bos=False, special=True)
            dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
            state["t_first"] = time.perf_counter_ns()
            recorder = LogprobRecorder(llm, job.logprobs) if job.logprobs is not None else None
            for i, tok in enumerate(toks):
                if stop.is_set():
                    break
                if job.max_tokens is not None and i >= job.max_tokens:
                    reason = "length"
                    break
                piece = dec.decode(llm.detokenize([tok]))
                state["samples"] += 1
                if recorder is not None:
                    emit(("logprobs", [recorder.forced(tok)]))
                if piece:
                    text_parts.append(piece)
                    emit(("text", piece))
            else:
                tail = dec.decode(b"", final=True)
                if tail:
                    text_parts.append(tail)
                    emit(("text", tail))
            finished = not stop.is_set()
            eval_count = state["samples"]
        else:
            import llama_cpp

            recorder = LogprobRecorder(llm, job.logprobs) if job.logprobs is not None else None

            def count(ids: Any, logits: Any) -> Any:
                """Called once per sampled token (the stopping criterion is also called once more
                after llama-cpp's loop ends, so it cannot count)."""
                state["samples"] += 1
                if recorder is not None:
                    recorder.before_sample(ids, logits)
                return logits

            def criterion(_ids: Any, _logits: Any) -> bool:
                if not state["t_first"]:
                    state["t_first"] = time.perf_counter_ns()
                # llama-cpp-python skips its max_tokens check while a multi-byte character is
                # incomplete (`multibyte_fix`), so it overshoots when the limit falls inside one, by
                # up to three tokens; Ollama never generates more than num_predict.
                return stop.is_set() or (job.max_tokens is not None and state["samples"] > job.max_tokens)

            sampling = dict(job.sampling)
            if sampling.get("seed") is None:
                sampling["seed"] = random.randint(0, 2**31 - 1)
            # With logprobs, one sample past the limit (the criterion above stops there): that
            # call is what resolves the last kept token's entry.
            extra = 1 if recorder is not None else 0
            gen = llm.create_completion(
                prompt_tokens,
                max_tokens=job.max_tokens + extra if job.max_tokens is not None else -1,
                stream=True,
                grammar=grammar,
                stopping_criteria=llama_cpp.StoppingCriteriaList([criterion]),
                logits_processor=llama_cpp.LogitsProcessorList([count]),
                **sampling,
            )
            held = ""  # with logprobs: the last piece, sent once its token's entry exists

            def send(piece: str) -> None:
                if recorder is not None:
                    entries = recorder.take()
                    if entries:
                        emit(("logprobs", entries))
                if piece:
                    text_parts.append(piece)
                    emit(("text", piece))

            try:
                for chunk in gen:
                    if stop.is_set():
                        break
                    choice = chunk["choices"][0]
                    piece = choice.get("text") or ""
                    if recorder is None:
                        if piece:
                            send(piece)
                    elif piece:
                        send(held)
                        held = piece
                    if choice.get("finish_reason"):
                        reason = choice["finish_reason"]
                        finished = True
                if held or (recorder is not None and recorder.entries):
                    send(held)
            except Exception as e:
                emit(("error", 500, f"an error was encountered while running the model: {e}"))
                return
            finally:
                gen.close()
            eval_count = state["samples"]
            if job.max_tokens is not None and eval_count > job.max_tokens:
                # cut by the criterion above: the last sample was discarded, not generated
                eval_count, reason, finished = job.max_tokens, "length", True
            elif not finished and not stop.is_set():
                reason = "length"

        t_end = time.perf_counter_ns()
        if stop.is_set() and not finished:
            self.events.add("generation_stopped", id=job.rid, reason="client_disconnected", tokens=eval_count)
            emit(("cancelled",))
            if job.unload_after:
                self._unload_locked()
            return
        if reason not in ("stop", "length"):
            reason = "stop"
        t_first = state["t_first"] or t_end
        stats: dict[str, Any] = {
            "done_reason": reason,
            "load_duration": max(load_ns, 1),
            "prompt_eval_count": len(prompt_tokens),
            "prompt_eval_duration": max(t_first - t_prompt, 1),
            "eval_count": eval_count,
            "eval_duration": max(t_end - t_first, 1),
        }
        if job.want_context:
            completion = "".join(text_parts)
            stats["context"] = list(prompt_tokens) + list(
                llm.tokenize(completion.encode("utf-8"), add_bos=False, special=True)
            )
        if job.unload_after:
            self._unload_locked()
        emit(("done", stats))

    # ------------------------------------------------------------------ embeddings
    def embed(self, texts: list[str], truncate: bool, normalize: bool) -> tuple[list[list[float]], int, int]:
        """Returns (vectors, prompt token count, load ns). Runs in a worker thread."""
        t_wait = time.perf_counter_ns()
        with self.lock:
            load_ns = self._load_duration(self._load_locked(), t_wait)
            llm = self.llm
            limit = self.n_ctx
            inputs: list[str] = []
            count = 0
            for t in texts:
                toks = llm.tokenize(t.encode("utf-8"), add_bos=True, special=False)
                if len(toks) > limit:
                    if not truncate:
                        raise PromptError(400, "the input length exceeds the context length")
                    toks = toks[:limit]
                    t = llm.detokenize(toks).decode("utf-8", errors="ignore")
                count += len(toks)
                inputs.append(t)
            vectors = []
            for t in inputs:
                v = np.asarray(llm.embed(t), dtype=np.float32)
                if v.ndim == 2:  # no pooling → mean over tokens
                    v = v.mean(axis=0)
                if normalize:
                    n = float(np.linalg.norm(v))
                    if n > 0:
                        v = v / n
                vectors.append([float(x) for x in v])
            return vectors, count, load_ns
