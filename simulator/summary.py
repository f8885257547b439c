"""The run's summary: what the terminals did, what the server answered, and whether the
terminals' bookkeeping and the server agree at the end (expected: no discrepancies)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.terminal import SaleRecord, TerminalStats


@dataclass
class Discrepancy:
    kind: str  # balance | units | stock | feed
    key: str  # customer code, "node/sku", "terminal/customer"
    expected: str
    actual: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "expected": self.expected, "actual": self.actual}


@dataclass
class Summary:
    terminals: list[str] = field(default_factory=list)
    outage_terminals: list[str] = field(default_factory=list)
    attempts: int = 0
    online: int = 0
    offline: int = 0
    not_sold: Counter = field(default_factory=Counter)
    refused_online: Counter = field(default_factory=Counter)
    online_duplicates: int = 0
    online_errors: Counter = field(default_factory=Counter)
    batches: int = 0
    resent_batches: int = 0
    uploaded: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_code: Counter = field(default_factory=Counter)
    upload_errors: Counter = field(default_factory=Counter)
    flags_upload: Counter = field(default_factory=Counter)
    flags_readback: Counter = field(default_factory=Counter)
    readback_sampled: int = 0
    readback_missing: int = 0
    readback_unreconciled: int = 0
    stored: int = 0
    lost: int = 0
    accepted_twice: int = 0
    retries: int = 0
    chaos_timeouts: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    predicted_negative_stock: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    # Every sale the terminals made and its outcome (``--record``); not in the JSON summary.
    sale_log: list[dict[str, Any]] = field(default_factory=list)

    def add_terminal(self, code: str, stats: TerminalStats, records: Iterable[SaleRecord]) -> None:
        """Fold one terminal's counters and sale outcomes into the totals."""
        self.terminals.append(code)
        for name in (
            "attempts",
            "online",
            "offline",
            "online_duplicates",
            "batches",
            "resent_batches",
            "uploaded",
            "accepted",
            "duplicates",
            "rejected",
        ):
            setattr(self, name, getattr(self, name) + getattr(stats, name))
        self.not_sold.update(stats.not_sold)
        self.refused_online.update(stats.refused_online)
        self.online_errors.update(stats.online_errors)
        self.rejected_by_code.update(stats.rejected_by_code)
        self.upload_errors.update(stats.upload_errors)
        self.flags_upload.update(stats.flags)
        for record in records:
            if record.sale is not None:
                self.sale_log.append(
                    {
                        "id": record.sale.id,
                        "terminal": code,
                        "seq": record.sale.seq,
                        "offline": record.sale.offline,
                        "outcome": record.outcome,
                        "stored": record.stored,
                        "codes": list(record.codes),
                    }
                )
            self.stored += record.stored
            self.accepted_twice += record.accepted_answers > 1
            # Made (not refused at the register) but never confirmed by the server.
            self.lost += record.outcome in {"queued", "unconfirmed"}

    @property
    def refused_total(self) -> int:
        return sum(self.refused_online.values())

    @property
    def discrepancy_count(self) -> int:
        return len(self.discrepancies)

    def to_dict(self) -> dict[str, Any]:
        by_kind = Counter(d.kind for d in self.discrepancies)
        return {
            "terminals": self.terminals,
            "outage_terminals": self.outage_terminals,
            "sales": {
                "attempts": self.attempts,
                "online": self.online,
                "offline": self.offline,
                "not_sold": dict(self.not_sold),
                "refused_online": self.refused_total,
                "stored": self.stored,
                "lost": self.lost,
            },
            "refused_online_by_code": dict(self.refused_online),
            "online_duplicates": self.online_duplicates,
            "online_errors": dict(self.online_errors),
            "upload": {
                "batches": self.batches,
                "resent_batches": self.resent_batches,
                "uploaded": self.uploaded,
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "rejected": self.rejected,
                "rejected_by_code": dict(self.rejected_by_code),
                "errors": dict(self.upload_errors),
                "accepted_twice": self.accepted_twice,
            },
            "transport": {"retries": self.retries, "chaos_timeouts": self.chaos_timeouts},
            "flags": {
                "upload": dict(self.flags_upload),
                "readback": dict(self.flags_readback),
                "readback_sampled": self.readback_sampled,
                "readback_missing": self.readback_missing,
                "readback_unreconciled": self.readback_unreconciled,
            },
            "discrepancies": {
                "total": self.discrepancy_count,
                "by_kind": dict(by_kind),
                "items": [d.to_dict() for d in self.discrepancies[:50]],
            },
            "predicted_negative_stock": [list(pair) for pair in self.predicted_negative_stock],
            "errors": self.errors,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
        }

    def to_json_line(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, default=str)

    def render_text(self) -> str:
        def counts(counter: Counter) -> str:
            return ", ".join(f"{code}={n}" for code, n in sorted(counter.items())) or "—"

        lines = [
            "Resumen de la simulación",
            f"  Terminales: {', '.join(self.terminals)} (sin conexión: {', '.join(self.outage_terminals) or '—'})",
            f"  Clientes atendidos: {self.attempts}; ventas en línea: {self.online}; "
            f"ventas sin conexión: {self.offline}; no vendidas: {counts(self.not_sold)}",
            f"  Rechazadas en caja (en línea): {self.refused_total} [{counts(self.refused_online)}]",
            f"  Lotes: {self.batches} (reenviados a propósito: {self.resent_batches}); ventas enviadas: "
            f"{self.uploaded}; aceptadas: {self.accepted}; duplicadas: {self.duplicates}; "
            f"rechazadas: {self.rejected} [{counts(self.rejected_by_code)}]",
            f"  Reintentos: {self.retries}; tiempos de espera provocados: {self.chaos_timeouts}",
            f"  Guardadas en el servidor: {self.stored}; sin confirmar (perdidas): {self.lost}; "
            f"aceptadas dos veces: {self.accepted_twice}",
            f"  Alertas al subir: {counts(self.flags_upload)}",
            f"  Alertas tras conciliar ({self.readback_sampled} ventas leídas, {self.readback_missing} no encontradas,"
            f" {self.readback_unreconciled} sin conciliar): {counts(self.flags_readback)}",
            f"  Inventario negativo previsto: "
            f"{', '.join(f'{node}/{sku}' for node, sku in self.predicted_negative_stock) or '—'}",
            f"  Diferencias finales (esperado 0): {self.discrepancy_count}",
        ]
        lines += [f"    {d.kind} {d.key}: esperado {d.expected}, servidor {d.actual}" for d in self.discrepancies[:20]]
        lines += [f"  Error: {error}" for error in self.errors]
        lines.append(f"  Duración: {self.elapsed_seconds:.1f} s")
        return "\n".join(lines)


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
