"""How a process is declared: `Process`, `step`, `Retry`, and the `Definition` the runner runs.

A `Process` subclass lists its steps as methods marked with `step`, in the
order they are written (a base class's steps come first). A kind declared in
the config as a list of requests to daemons becomes the same `Definition`,
so the runner knows one shape only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from typing import TYPE_CHECKING, Any, ClassVar, Final

import pydantic

from ..orchestrators._retries import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ._context import StepContext

    StepFunction = Callable[[Any, StepContext, Any], Any]
    """A step's body: ``(process instance, ctx, input) -> output``."""

DEFAULT_MAX_CONCURRENT: Final = 10
"""Processes of one kind running at once unless the kind says otherwise."""
_STEP_MARK: Final = "_tierd_step"
_KIND = re.compile(r"^[A-Za-z_][\w.-]{0,99}$")
FAIL_POLICIES: Final = ("fail_fast", "collect")
"""The named fail policies of a batch; a float (a failed fraction) is the third kind."""


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """How a failed step is tried again: exponential backoff, by exception type.

    The backoff is the one messages retry with (`tierd.orchestrators` uses the
    same formula): ``initial_delay * multiplier ** (failures - 1)``, at most
    ``max_delay``.

    Example::

        @tierd.step(retry=tierd.Retry(max_attempts=3, initial_delay=5, on=["ConnectionError"]))
        def collection(self, ctx, params): ...
    """

    max_attempts: int = 3
    """Attempts in all, the first one included; 1 means no retry."""
    initial_delay: float = 1.0
    """Seconds before the second attempt."""
    multiplier: float = 2.0
    """Each further attempt waits this many times longer."""
    max_delay: float = 60.0
    """The longest wait between two attempts, in seconds."""
    on: Sequence[str] = ("Exception",)
    """Exception class names retried (a subclass of one matches). A `tierd.StepError`
    is retried only if it is ``recoverable``; a step's timeout is a ``TimeoutError``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "on", tuple(self.on))
        if self.max_attempts < 1:
            raise ValueError(f"Retry.max_attempts must be >= 1, not {self.max_attempts}")
        if self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("Retry delays must be >= 0 and its multiplier >= 1")
        if not self.on or not all(isinstance(name, str) and name for name in self.on):
            raise ValueError("Retry.on must name at least one exception class")

    @property
    def policy(self) -> RetryPolicy:
        """The messaging layer's `RetryPolicy` with the same numbers: one backoff formula."""
        return RetryPolicy(
            self.max_attempts, self.initial_delay, self.multiplier, self.max_delay, tuple(self.on)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a kind, as the runner sees it."""

    name: str
    run: StepFunction
    """The body: ``(process instance, ctx, input) -> output``."""
    timeout: float | None = None
    """Seconds an attempt may take; None: no limit but the process's."""
    heartbeat: float | None = None
    """Seconds an attempt may go without ``ctx.progress``/``ctx.heartbeat``; None: no limit."""
    retry: Retry | None = None
    """What a failed attempt does next; None: the step fails at once."""
    compensate: StepFunction | None = None
    """Undoes the completed step when the process fails, is cancelled or times out."""


def check_fail_policy(value: Any, where: str = "fail_policy") -> str | float:
    """``"fail_fast"``, ``"collect"``, or a failed fraction in (0, 1] that fails the batch.

    Raises:
        ValueError: anything else, naming ``where``.
    """
    if isinstance(value, str) and value in FAIL_POLICIES:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    raise ValueError(
        f"{where} must be 'fail_fast', 'collect' or a failed fraction in (0, 1], not {value!r}"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class BatchSpec:
    """How a kind's batches run (`tierd.Batch`): where items come from, what handles one, limits."""

    items: Callable[[Any, StepContext, Any], Iterable[Any]]
    """``(instance, ctx, params) -> iterable of items``; called again after a restart."""
    process_item: Callable[[Any, StepContext, Any], Any]
    """``(instance, ctx, item) -> result``: one item's work, in a thread of its own."""
    batch_size: int = 10
    max_concurrent: int = 1
    """Items in flight at once (not processes: that is the kind's ``max_concurrent``)."""
    delay_between_batches: float = 0.0
    retry_failed_batches: int = 0
    fail_policy: str | float = "collect"
    item_timeout: float | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_concurrent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
        retries = self.retry_failed_batches
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retry_failed_batches must be a whole number >= 0, not {retries!r}")
        delay = self.delay_between_batches
        if not (isinstance(delay, int | float) and 0 <= delay < math.inf):
            raise ValueError(f"delay_between_batches must be seconds >= 0, not {delay!r}")
        limit = self.item_timeout
        if limit is not None and not (isinstance(limit, int | float) and 0 < limit < math.inf):
            raise ValueError(f"item_timeout must be positive seconds, not {limit!r}")
        object.__setattr__(self, "fail_policy", check_fail_policy(self.fail_policy))


@dataclasses.dataclass(frozen=True, slots=True)
class _StepOptions:
    timeout: float | None
    heartbeat: float | None
    retry: Retry | None
    compensate: str | None


def step(
    function: Callable[..., Any] | None = None,
    *,
    timeout: float | None = None,
    heartbeat: float | None = None,
    retry: Retry | None = None,
    compensate: str | None = None,
) -> Any:
    """Mark a method of a `Process` as a step: ``def name(self, ctx, data) -> output``.

    Use it bare (``@tierd.step``) or with options.

    Args:
        function: the method (when used bare).
        timeout: seconds one attempt may take.
        heartbeat: seconds one attempt may go without ``ctx.progress`` or ``ctx.heartbeat``.
        retry: how a failed attempt is tried again.
        compensate: the name of the method that undoes this step; it is called
            ``(self, ctx, output)`` with the step's output.

    Raises:
        ValueError: a timeout or heartbeat that is not a positive number.
    """
    for name, value in (("timeout", timeout), ("heartbeat", heartbeat)):
        if value is not None and not (isinstance(value, int | float) and 0 < value < math.inf):
            raise ValueError(f"step {name} must be a positive number of seconds, not {value!r}")
    options = _StepOptions(timeout, heartbeat, retry, compensate)

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        setattr(method, _STEP_MARK, options)
        return method

    return mark(function) if function is not None else mark


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class Process:
    """A durable unit of work made of ordered steps; subclass it.

    Example::

        class ImportClass(tierd.Process):
            kind = "import_class"
            timeout = 1800
            max_concurrent = 3

            @tierd.step(timeout=300)
            def validation(self, ctx, params):
                return params                      # the next step's input

    A step's input is the params for the first step and the previous step's
    output after that; the last step's output is the process's result. A new
    instance runs each process (and again after a restart), so keep state in
    step outputs and ``ctx.checkpoint``, not on ``self``.
    """

    kind: ClassVar[str] = ""
    """The name clients submit; default: the class name in snake_case."""
    timeout: ClassVar[float | None] = None
    """Seconds the whole process may take; None: no limit."""
    max_concurrent: ClassVar[int] = DEFAULT_MAX_CONCURRENT
    """Processes of this kind running at once; the others wait, pending."""
    params_model: ClassVar[type[pydantic.BaseModel] | None] = None
    """A pydantic model that checks the params at submit (strictly), if set."""

    def validate(self, params: Any) -> Any:
        """Check the params at submit; raise `ValueError` to refuse them; return them (or fixed).

        Runs in the submitter's thread; nothing is stored when it raises.
        """
        return params

    @classmethod
    def definition(cls) -> Definition:
        """The `Definition` the runner runs for this class.

        Raises:
            TypeError: the class has no steps, or a compensation names no method.
        """
        steps: dict[str, StepSpec] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                options = getattr(value, _STEP_MARK, None)
                if not isinstance(options, _StepOptions):
                    continue
                undo = None
                if options.compensate is not None:
                    undo = getattr(cls, options.compensate, None)
                    if not callable(undo):
                        raise TypeError(
                            f"{cls.__qualname__}.{name}: compensate={options.compensate!r} "
                            "names no method of the class"
                        )
                steps.pop(name, None)  # an override keeps its place at the end
                steps[name] = StepSpec(
                    name, value, options.timeout, options.heartbeat, options.retry, undo
                )
        if not steps:
            raise TypeError(f"{cls.__qualname__} has no steps: mark methods with @tierd.step")
        kind = cls.kind or _snake_case(cls.__name__)
        return Definition(
            kind=kind,
            steps=tuple(steps.values()),
            factory=cls,
            timeout=cls.timeout,
            max_concurrent=cls.max_concurrent,
            params_model=cls.params_model,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Definition:
    """A kind of process: its steps and limits, whether from a class or from the config."""

    kind: str
    steps: tuple[StepSpec, ...]
    factory: Callable[[], Any]
    """Makes the instance a process's steps are called on."""
    timeout: float | None = None
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    params_model: type[pydantic.BaseModel] | None = None
    batch: BatchSpec | None = None
    """How the kind's one step runs item by item, if it is a batch (`tierd.Batch`)."""

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise ValueError(f"bad process kind {self.kind!r}: letters, digits, _ . - only")
        names = [spec.name for spec in self.steps]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"process kind {self.kind!r} needs steps with distinct names")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent of {self.kind!r} must be >= 1")

    @property
    def step_names(self) -> list[str]:
        """The steps' names, in order."""
        return [spec.name for spec in self.steps]

    def index_of(self, name: str) -> int:
        """The position of step ``name``.

        Raises:
            ValueError: the kind has no such step.
        """
        for index, spec in enumerate(self.steps):
            if spec.name == name:
                return index
        raise ValueError(f"process kind {self.kind!r} has no step {name!r}: {self.step_names}")

    def check_params(self, params: Any) -> Any:
        """The params as they will be stored, once the kind's own checks accept them.

        Raises:
            ValueError: the params model or the ``validate`` hook refused them.
        """
        if self.params_model is not None:
            try:
                model = self.params_model.model_validate(params, strict=True)
            except pydantic.ValidationError as invalid:
                first = invalid.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "params"
                raise ValueError(
                    f"params of {self.kind!r} refused: params.{where}: {first['msg']}"
                ) from None
            params = model.model_dump(mode="json")
        instance = self.factory()
        check = getattr(instance, "validate", None)
        if callable(check):
            try:
                params = check(params)
            except (TypeError, ValueError) as error:
                raise ValueError(f"params of {self.kind!r} refused: {error}") from None
        return params

    def replace(self, **changes: Any) -> Definition:
        """A copy with some fields changed (the config may rename a kind or change limits)."""
        return dataclasses.replace(self, **changes)


def _request_step(target: str, timeout: float, _instance: Any, ctx: StepContext, data: Any) -> Any:
    return ctx.request(target, data, timeout=timeout)


class _NoInstance:
    """What the steps of a config-declared kind are called on: nothing."""


def request_steps(
    kind: str,
    steps: Sequence[tuple[str, str, float, Retry | None]],
    *,
    timeout: float | None = None,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
) -> Definition:
    """A kind whose steps are requests to daemons: each gets the previous reply as payload.

    Args:
        kind: the kind's name.
        steps: ``(name, target, timeout, retry)`` per step, in order.
        timeout: seconds the whole process may take.
        max_concurrent: processes of the kind running at once.
    """
    specs = tuple(
        StepSpec(name, functools.partial(_request_step, target, seconds), seconds, None, retry)
        for name, target, seconds, retry in steps
    )
    return Definition(kind, specs, _NoInstance, timeout, max_concurrent)
