"""The request pipeline: an HTTP-free ``Call`` run through a chain of steps."""

from inferlab.pipeline.call import DISCONNECT, SUCCESS, CacheMode, Call, Ending, EndKind, Reply
from inferlab.pipeline.chain import Chain, Next, RouteScoped, Step, ending_of, only_for
from inferlab.pipeline.usage import UsageMeter, estimate_prompt_tokens

__all__ = [
    "DISCONNECT", "SUCCESS", "CacheMode", "Call", "Chain", "EndKind", "Ending", "Next", "Reply", "RouteScoped", "Step",
    "UsageMeter", "ending_of", "estimate_prompt_tokens", "only_for",
]
