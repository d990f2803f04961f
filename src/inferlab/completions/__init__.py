"""The legacy completions route's own fields (``echo``, integer ``logprobs``) on engines that
answer in the newer shapes."""
