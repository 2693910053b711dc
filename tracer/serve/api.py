"""The request and response shapes of the OpenAI completions API that both servers speak (prompts as token ids).

Kept apart from the server so the validation is plain functions: a bad request is a 400 with a JSON error.
"""
from __future__ import annotations

import time


class BadRequest(Exception):
    pass


def parse_completion_request(body, vocab_size: int, context_tokens: int | None) -> dict:
    """The checked fields of a /v1/completions body, or BadRequest saying which field is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], list):
        prompt = prompt[0]  # a batch of one prompt
    if not (isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool)
                                                         for t in prompt)):
        raise BadRequest("prompt must be a non-empty list of token ids (this server has no tokenizer)")
    bad = [t for t in prompt if not 0 <= t < vocab_size]
    if bad:
        raise BadRequest(f"token id {bad[0]} outside the vocabulary [0, {vocab_size})")
    max_tokens = body.get("max_tokens", 16)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens must be a positive integer")
    if context_tokens and len(prompt) + max_tokens > context_tokens:
        raise BadRequest(f"prompt ({len(prompt)}) + max_tokens ({max_tokens}) exceeds the model's context of "
                         f"{context_tokens} tokens")
    for key in ("stream", "ignore_eos"):
        if not isinstance(body.get(key, False), bool):
            raise BadRequest(f"{key} must be true or false")
    temperature = body.get("temperature", 0)
    if temperature not in (0, 0.0, None):
        raise BadRequest("only greedy decoding (temperature 0) is served")
    return {"prompt": prompt, "max_tokens": max_tokens, "stream": body.get("stream", False),
            "ignore_eos": body.get("ignore_eos", False),
            "include_usage": bool((body.get("stream_options") or {}).get("include_usage", False)),
            "model": body.get("model")}


def error_body(message: str, kind: str, code: int) -> dict:
    return {"error": {"message": message, "type": kind, "code": code}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(req_id: str, model: str, token_ids: list[int], finish_reason, prompt_tokens: int) -> dict:
    return {"id": req_id, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": "", "token_ids": token_ids, "finish_reason": finish_reason,
                         "logprobs": None}],
            "usage": usage(prompt_tokens, len(token_ids))}


def stream_chunk(req_id: str, model: str, token_ids: list[int], finish_reason=None, usage_body=None) -> dict:
    chunk = {"id": req_id, "object": "text_completion", "created": int(time.time()), "model": model,
             "choices": [{"index": 0, "text": "", "token_ids": token_ids, "finish_reason": finish_reason,
                          "logprobs": None}] if usage_body is None else [], "usage": usage_body}
    return chunk
