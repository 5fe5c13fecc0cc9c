"""Reading the values ``response_value`` meters count out of responses, message by message.

For an MCP target each JSON path is applied to the JSON-RPC response message answering a metered
call (matched by ``id``), whether it came as a JSON body or as one event of a stream; for a plain
HTTP target, to the whole JSON body. A path that selects nothing, or selects something that is
not a non-negative number, counts 0 and leaves a note for the audit event.
"""

from __future__ import annotations

from typing import Any

import orjson

from metering.call import MeteredCall, MeterUse
from metering.compiler import ValuePath
from metering.limiter import Charge


class ValueCounter:
    """Collects the values of one call's response; :meth:`take_charges` hands over what to add."""

    def __init__(self, call: MeteredCall, *, whole_body: bool) -> None:
        self.call = call
        self.whole_body = whole_body
        self._uses = call.value_uses
        # JSON-RPC ids still awaiting their response, with the value meters that count them.
        self._waiting: dict[Any, list[MeterUse]] = {}
        for use in self._uses:
            for route in use.routes:
                if route.has_id:
                    self._waiting.setdefault(_id_key(route.id), []).append(use)
        self._pending: dict[int, float] = {}  # amounts by meter id, not yet handed over

    def observe(self, payload: bytes) -> None:
        """Read the values out of one JSON document (a body or an event's data)."""
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            if self.whole_body:
                for use in self._uses:
                    self.call.notes.append(f"meter {use.meter.name}: the response is not JSON: counted 0")
            return
        if self.whole_body:
            self._count(document, list(self._uses), "the response")
            self._waiting.clear()
            return
        for message in document if isinstance(document, list) else [document]:
            if isinstance(message, dict) and ("result" in message or "error" in message):
                uses = self._waiting.pop(_id_key(message.get("id")), None)
                if uses:
                    self._count(message, uses, f"the response to id {message.get('id')}")

    def take_charges(self) -> tuple[Charge, ...]:
        """The amounts read since the last call, one charge per meter with something to add."""
        by_id = {use.meter.id: use.meter for use in self._uses}
        charges = tuple(
            Charge(meter=by_id[meter_id], amount=amount, needs_room=False)
            for meter_id, amount in self._pending.items()
            if amount > 0
        )
        self._pending = {}
        return charges

    def finish(self) -> None:
        """Note the metered calls whose response never came: they count 0."""
        for key, uses in self._waiting.items():
            for use in uses:
                self.call.notes.append(f"meter {use.meter.name}: no response to id {key} seen: counted 0")
        self._waiting.clear()

    def _count(self, document: Any, uses: list[MeterUse], where: str) -> None:
        values: dict[str, float] = {}  # a path shared by several meters is read once
        for use in uses:
            for path in use.meter.value_paths:
                if path.text not in values:
                    values[path.text] = self._read(document, path, use, where)
                self._pending[use.meter.id] = self._pending.get(use.meter.id, 0.0) + values[path.text]
        for text, value in values.items():
            self.call.values[text] = self.call.values.get(text, 0.0) + value

    def _read(self, document: Any, path: ValuePath, use: MeterUse, where: str) -> float:
        found = path.find(document)
        if not found:
            self.call.notes.append(
                f"meter {use.meter.name}: value path {path.text} missing in {where}: counted 0"
            )
            return 0.0
        total = 0.0
        for value in found:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                self.call.notes.append(
                    f"meter {use.meter.name}: value path {path.text} is {_shown(value)} in {where}, "
                    "not a non-negative number: counted 0"
                )
                continue
            total += value
        return total


def _id_key(value: Any) -> Any:
    """JSON-RPC ids as dictionary keys: 7 and 7.0 alike, strings as they are."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."
