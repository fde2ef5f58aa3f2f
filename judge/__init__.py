"""Calls to the operator's model endpoint (an OpenAI-compatible chat-completions API): the
LLM-as-judge evaluators, judge-assisted attribution and replay use it. A layer beside alerts/:
it imports core/ and db/, never an edge. Nothing is sent unless `judge_base_url` is configured."""
