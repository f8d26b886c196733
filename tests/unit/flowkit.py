"""Drive sans-IO flows in tests with scripted answers and a fake clock (no sockets, no sleeping)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vision_grpc._flows.retry import Call, Flow, Sleep


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Script:
    """Answers each Call with the next item (a message, or an exception to throw in)."""

    answers: list[Any]
    clock: FakeClock = field(default_factory=FakeClock)
    calls: list[Call] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    call_cost: float = 0.01

    def run(self, flow: Flow[Any]) -> Any:
        answers = iter(self.answers)
        try:
            action = next(flow)
            while True:
                if isinstance(action, Sleep):
                    self.sleeps.append(action.seconds)
                    self.clock.now += action.seconds
                    action = flow.send(None)
                    continue
                self.calls.append(action)
                self.clock.now += self.call_cost
                answer = next(answers)
                if isinstance(answer, Callable):  # type: ignore[arg-type]
                    answer = answer(action)
                action = flow.throw(answer) if isinstance(answer, BaseException) else flow.send(answer)
        except StopIteration as stop:
            return stop.value


def names(calls: Iterable[Call]) -> list[str]:
    return [c.method.name for c in calls]
