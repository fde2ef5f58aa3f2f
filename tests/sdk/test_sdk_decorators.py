"""@agent / @step / @tool and their context-manager forms: sync, async,
generators, async generators, nesting, threads, tasks and exceptions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import traceback

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from sdk_helpers import HOST_EXPORTER, parent_id

import causeline


def test_sync_agent_step_tool_nesting(rec):
    @causeline.tool("lookup")
    def lookup(key):
        return {"key": key}

    @causeline.step("plan")
    def plan(q):
        return lookup(q)

    @causeline.agent("planner")
    def run(q):
        return plan(q)

    assert run("x") == {"key": "x"}
    agent = rec.one("invoke_agent planner")
    step = rec.one("invoke_workflow plan")
    tool = rec.one("execute_tool lookup")
    assert parent_id(agent) is None
    assert parent_id(step) == agent.context.span_id
    assert parent_id(tool) == step.context.span_id
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "planner"
    assert step.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert step.attributes["gen_ai.workflow.name"] == "plan"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "lookup"
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert tool.attributes["gen_ai.agent.name"] == "planner"
    assert all(s.kind == SpanKind.INTERNAL for s in (agent, step, tool))
    assert all(s.instrumentation_scope.name == "causeline" for s in (agent, step, tool))
    # Causeline joined the application's provider: its own exporter sees the spans too.
    assert {s.name for s in HOST_EXPORTER.get_finished_spans()} >= {"invoke_agent planner", "execute_tool lookup"}


def test_bare_decorators_use_function_names_and_keep_metadata(rec):
    @causeline.tool
    def fetch_weather(city: str) -> str:
        """Fetch the weather for a city.

        More text."""
        return "sunny"

    @causeline.agent
    def concierge():
        return fetch_weather("Oslo")

    assert concierge() == "sunny"
    assert fetch_weather.__name__ == "fetch_weather"
    assert fetch_weather.__doc__.startswith("Fetch the weather")
    tool = rec.one("execute_tool fetch_weather")
    assert tool.attributes["gen_ai.tool.description"] == "Fetch the weather for a city."
    rec.one("invoke_agent concierge")


def test_content_not_captured_by_default(rec):
    @causeline.tool("echo")
    def echo(text):
        return text

    echo("secret prompt")
    tool = rec.one("execute_tool echo")
    assert "gen_ai.tool.call.arguments" not in tool.attributes
    assert "gen_ai.tool.call.result" not in tool.attributes


def test_tool_arguments_and_result_with_capture(rec_content):
    class Calculator:
        @causeline.tool("add")
        def add(self, a, b=2, **extra):
            return {"sum": a + b}

    assert Calculator().add(1, b=5, note="mail me at bob@example.com") == {"sum": 6}
    tool = rec_content.one("execute_tool add")
    args = tool.attributes["gen_ai.tool.call.arguments"]
    assert '"a":1' in args and '"b":5' in args and "self" not in args
    assert "[REDACTED_EMAIL]" in args and "bob@example.com" not in args
    assert tool.attributes["gen_ai.tool.call.result"] == '{"sum":6}'


def test_exception_recorded_and_reraised_unchanged(rec):
    class PaymentDeclined(Exception):
        pass

    err = PaymentDeclined("card declined")

    @causeline.tool("charge")
    def charge():
        raise err

    @causeline.agent("billing")
    def billing():
        return charge()

    with pytest.raises(PaymentDeclined) as info:
        billing()
    assert info.value is err
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "charge"  # the original raise site is still the innermost frame
    for name in ("execute_tool charge", "invoke_agent billing"):
        span = rec.one(name)
        assert span.status.status_code == StatusCode.ERROR
        assert span.attributes["error.type"].endswith("PaymentDeclined")
        (event,) = [e for e in span.events if e.name == "exception"]
        assert event.attributes["exception.message"] == "card declined"
        assert "PaymentDeclined" in event.attributes["exception.type"]
        assert "raise err" in event.attributes["exception.stacktrace"]


def test_builtin_exception_type_name(rec):
    @causeline.tool("slow")
    def slow():
        raise TimeoutError("provider timed out")

    with pytest.raises(TimeoutError):
        slow()
    assert rec.one("execute_tool slow").attributes["error.type"] == "TimeoutError"


def test_nested_agents(rec):
    @causeline.agent("researcher")
    def researcher():
        return "facts"

    @causeline.agent("writer")
    def writer():
        return researcher() + "!"

    assert writer() == "facts!"
    outer = rec.one("invoke_agent writer")
    inner = rec.one("invoke_agent researcher")
    assert parent_id(inner) == outer.context.span_id
    assert inner.attributes["gen_ai.agent.name"] == "researcher"


def test_tool_inside_nested_agent_names_innermost_agent(rec):
    @causeline.tool("t")
    def t():
        return 1

    with causeline.agent_run("outer"):
        with causeline.agent_run("inner"):
            t()
        t()
    tools = rec.named("execute_tool t")
    assert sorted(s.attributes["gen_ai.agent.name"] for s in tools) == ["inner", "outer"]


def test_context_manager_forms(rec):
    with causeline.agent_run("support", conversation_id="conv-1", user_id="u-9", id="agent-7") as run:
        with causeline.step("retrieve") as s:
            s.set_attribute("app.docs", 3)
        with causeline.tool("search") as t:
            t.set_arguments({"q": "x"})  # ignored: capture off
    agent = rec.one("invoke_agent support")
    assert agent.attributes["gen_ai.conversation.id"] == "conv-1"
    assert agent.attributes["user.id"] == "u-9"
    assert agent.attributes["gen_ai.agent.id"] == "agent-7"
    assert rec.one("invoke_workflow retrieve").attributes["app.docs"] == 3
    assert "gen_ai.tool.call.arguments" not in rec.one("execute_tool search").attributes
    assert run.trace_id == format(agent.context.trace_id, "032x")
    assert run.span_id == format(agent.context.span_id, "016x")


def test_context_manager_exception_propagates(rec):
    with pytest.raises(KeyError):
        with causeline.step("parse"):
            {}["missing"]
    span = rec.one("invoke_workflow parse")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"


def test_async_functions_and_task_propagation(rec):
    @causeline.tool("fetch")
    async def fetch(i):
        await asyncio.sleep(0.001)
        return i * 2

    @causeline.agent("gatherer")
    async def gatherer():
        return await asyncio.gather(*(fetch(i) for i in range(3)))

    assert asyncio.run(gatherer()) == [0, 2, 4]
    agent = rec.one("invoke_agent gatherer")
    tools = rec.named("execute_tool fetch")
    assert len(tools) == 3
    assert all(parent_id(t) == agent.context.span_id for t in tools)


def test_async_context_managers(rec):
    async def main():
        async with causeline.agent_run("async-agent"):
            async with causeline.step("s1"):
                await asyncio.sleep(0)
            task = asyncio.create_task(_child())
            await task

    async def _child():
        async with causeline.tool("in-task"):
            await asyncio.sleep(0)

    asyncio.run(main())
    agent = rec.one("invoke_agent async-agent")
    assert parent_id(rec.one("invoke_workflow s1")) == agent.context.span_id
    assert parent_id(rec.one("execute_tool in-task")) == agent.context.span_id


def test_async_exception(rec):
    @causeline.agent("a")
    async def failing():
        await asyncio.sleep(0)
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        asyncio.run(failing())
    assert rec.one("invoke_agent a").status.status_code == StatusCode.ERROR


def test_generator_span_covers_iteration_but_not_consumer(rec):
    @causeline.tool("inner")
    def inner():
        return 1

    @causeline.step("produce")
    def produce(n):
        for i in range(n):
            inner()  # runs inside the step span
            yield i
        return "done"

    with causeline.agent_run("consumer"):
        results = []
        for item in produce(3):
            with causeline.tool("consume"):  # consumer code: child of the agent, not the step
                results.append(item)
    assert results == [0, 1, 2]
    agent = rec.one("invoke_agent consumer")
    step = rec.one("invoke_workflow produce")
    assert parent_id(step) == agent.context.span_id
    assert all(parent_id(s) == step.context.span_id for s in rec.named("execute_tool inner"))
    assert all(parent_id(s) == agent.context.span_id for s in rec.named("execute_tool consume"))
    assert step.status.status_code == StatusCode.UNSET


def test_generator_return_value_send_and_close(rec):
    @causeline.step("echo")
    def echo():
        received = []
        while True:
            value = yield len(received)
            if value is None:
                return received
            received.append(value)

    def driver():
        return (yield from echo())

    gen = driver()
    assert next(gen) == 0
    assert gen.send("a") == 1
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    assert stop.value.value == ["a"]

    @causeline.step("endless")
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    g = endless()
    next(g)
    g.close()  # early close is not an error
    assert rec.one("invoke_workflow endless").status.status_code == StatusCode.UNSET
    assert rec.one("invoke_workflow echo").end_time is not None


def test_generator_exception_and_throw(rec):
    @causeline.step("boom")
    def boom():
        yield 1
        raise RuntimeError("midway")

    with pytest.raises(RuntimeError, match="midway"):
        list(boom())
    assert rec.one("invoke_workflow boom").status.status_code == StatusCode.ERROR

    @causeline.step("catcher")
    def catcher():
        try:
            yield 1
        except KeyError:
            yield "caught"

    g = catcher()
    next(g)
    assert g.throw(KeyError("k")) == "caught"
    g.close()
    assert rec.one("invoke_workflow catcher").status.status_code == StatusCode.UNSET


def test_async_generator(rec):
    @causeline.tool("inner")
    async def inner():
        return 1

    @causeline.step("astream")
    async def astream(n):
        for i in range(n):
            await inner()
            yield i

    async def main():
        with causeline.agent_run("reader"):
            return [i async for i in astream(3)]

    assert asyncio.run(main()) == [0, 1, 2]
    step = rec.one("invoke_workflow astream")
    assert parent_id(step) == rec.one("invoke_agent reader").context.span_id
    assert all(parent_id(s) == step.context.span_id for s in rec.named("execute_tool inner"))


def test_async_generator_error_and_early_close(rec):
    @causeline.step("afail")
    async def afail():
        yield 1
        raise ConnectionError("stream reset")

    @causeline.step("aclose")
    async def aclose_me():
        for i in range(10):
            yield i

    async def main():
        with pytest.raises(ConnectionError):
            async for _ in afail():
                pass
        agen = aclose_me()
        assert await agen.__anext__() == 0
        await agen.aclose()

    asyncio.run(main())
    assert rec.one("invoke_workflow afail").status.status_code == StatusCode.ERROR
    assert rec.one("invoke_workflow aclose").status.status_code == StatusCode.UNSET


def test_threads_with_wrap(rec):
    @causeline.tool("work")
    def work():
        return threading.current_thread().name

    with causeline.agent_run("threaded"):
        t = threading.Thread(target=causeline.wrap(work), name="worker-1")
        t.start()
        t.join()
    agent = rec.one("invoke_agent threaded")
    assert parent_id(rec.one("execute_tool work")) == agent.context.span_id


def test_threads_propagate_automatically_with_threading_instrumentation(start_causeline):
    rec = start_causeline(auto_instrument=["threading"])
    assert causeline.stats()["instrumentations"]["threading"] == "enabled"

    @causeline.tool("pooled")
    def pooled(i):
        return i

    class Worker(threading.Thread):
        def run(self):
            pooled(-1)

    with causeline.agent_run("pool-agent"):
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(pooled, range(4))) == [0, 1, 2, 3]
        plain = threading.Thread(target=pooled, args=(9,))
        plain.start()
        plain.join()
        sub = Worker()
        sub.start()
        sub.join()
    agent = rec.one("invoke_agent pool-agent")
    tools = rec.named("execute_tool pooled")
    assert len(tools) == 6
    assert all(parent_id(t) == agent.context.span_id for t in tools)


def test_reused_instrument_as_context_manager_is_reentrant(rec):
    step = causeline.step("reused")
    with step:
        with step:
            pass
    spans = rec.named("invoke_workflow reused")
    assert len(spans) == 2
    inner = [s for s in spans if s.parent is not None and s.parent.span_id in {x.context.span_id for x in spans}]
    assert len(inner) == 1


def test_decorators_work_before_init():
    # No init: spans go to the global provider (a no-op here) and functions behave normally.
    @causeline.tool("pre")
    def pre(x):
        return x + 1

    @causeline.agent("pre-agent")
    async def pre_agent():
        return pre(1)

    assert asyncio.run(pre_agent()) == 2


def test_shared_instrument_entered_from_concurrent_tasks(rec):
    load = causeline.step("load")

    async def worker(i):
        async with load as handle:
            handle.set_attribute("app.worker", i)
            await asyncio.sleep(0.001 * (3 - i))

    async def main():
        with causeline.agent_run("fan-out"):
            await asyncio.gather(*(worker(i) for i in range(3)))

    asyncio.run(main())
    spans = rec.named("invoke_workflow load")
    agent = rec.one("invoke_agent fan-out")
    assert sorted(s.attributes["app.worker"] for s in spans) == [0, 1, 2]
    assert all(parent_id(s) == agent.context.span_id for s in spans)


def test_context_manager_use_does_not_grow_the_context(rec):
    import contextvars

    with causeline.step("warm-up"):
        pass
    before = len(contextvars.copy_context())
    for _ in range(300):
        with causeline.step("s"):
            with causeline.tool("t"):
                pass
    assert len(contextvars.copy_context()) == before


def test_interleaved_exits_of_two_instruments(rec):
    a, b = causeline.step("a"), causeline.step("b")
    ha = a.__enter__()
    hb = b.__enter__()
    a.__exit__(None, None, None)  # out of order: still ends a's own span
    assert trace.get_current_span() is hb.span  # b is still open: its span stays current
    b.__exit__(None, None, None)
    assert not ha.span.is_recording() and not hb.span.is_recording()
    # What was current before the outermost block, not a's ended span: later root spans are roots.
    assert trace.get_current_span() is trace.INVALID_SPAN
    with causeline.step("next") as nxt:
        assert not nxt.span.parent


def test_nested_blocks_restore_their_parent_context(rec):
    with causeline.step("outer") as outer:
        with causeline.step("inner"):
            pass
        assert trace.get_current_span() is outer.span
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_callable_returning_a_coroutine_span_covers_the_await(rec_content):
    from opentelemetry import trace

    seen = {}

    class AsyncTool:  # not ``async def``: inspect does not see a coroutine function
        async def __call__(self, q):
            await asyncio.sleep(0)
            span = trace.get_current_span()
            seen["current"] = span.name
            seen["recording"] = span.is_recording()
            return "done:" + q

    fetch = causeline.tool("fetch")(AsyncTool())

    async def main():
        return await fetch("x")

    assert asyncio.run(main()) == "done:x"
    assert seen == {"current": "execute_tool fetch", "recording": True}
    span = rec_content.one("execute_tool fetch")
    assert span.attributes["gen_ai.tool.call.result"] == "done:x"

    class Failing:
        async def __call__(self):
            raise LookupError("nope")

    failing = causeline.tool("failing")(Failing())
    with pytest.raises(LookupError):
        asyncio.run(failing())
    assert rec_content.one("execute_tool failing").status.status_code == StatusCode.ERROR


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # "coroutine ... was never awaited"
def test_coroutine_result_never_awaited_still_ends_the_span(rec):
    import gc

    class AsyncTool:
        async def __call__(self):
            return 1

    coro = causeline.tool("dropped")(AsyncTool())()
    del coro
    gc.collect()
    assert rec.one("execute_tool dropped").end_time is not None


def test_generator_called_with_bad_arguments_ends_its_span(rec):
    @causeline.step
    def gen(a):
        yield a

    with pytest.raises(TypeError):
        list(gen())
    assert rec.one("invoke_workflow gen").status.status_code == StatusCode.ERROR


def test_async_generator_without_span_still_forwards_asend_and_athrow(rec, monkeypatch):
    from causeline import _internal, decorators

    def broken(*args, **kwargs):
        raise RuntimeError("sdk bug")

    monkeypatch.setattr(_internal, "raise_internal_errors", False)
    monkeypatch.setattr(decorators, "step_run", broken)

    @causeline.step
    async def agen():
        x = yield 1
        try:
            yield x
        except KeyError:
            yield "caught"

    async def main():
        it = agen()
        out = [await it.__anext__(), await it.asend(5), await it.athrow(KeyError())]
        await it.aclose()
        return out

    assert asyncio.run(main()) == [1, 5, "caught"]
    assert [where for where, _ in _internal.recent_errors()] == ["decorator start"]
    _internal.clear_errors()
