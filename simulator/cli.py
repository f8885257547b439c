"""The simulator's options, declared once for ``python -m simulator`` and for
``python manage.py simulate_pos`` (both hand an argparse parser to :func:`add_arguments`)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from simulator.runner import Options


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("debe ser un entero mayor que 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("debe ser mayor que 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("no puede ser negativo")
    return value


def _batch_size(text: str) -> int:
    value = _positive_int(text)
    if value > 500:
        raise argparse.ArgumentTypeError("un lote lleva como máximo 500 ventas")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Options()
    parser.add_argument("--url", default=defaults.url, help="URL del back office (por defecto %(default)s).")
    parser.add_argument(
        "--demo-file", default=defaults.demo_file, help="JSON escrito por seed_demo --output (llaves de terminales)."
    )
    parser.add_argument(
        "--terminals",
        default=None,
        help="Cantidad o códigos separados por coma; por defecto todas las cajas y kioscos.",
    )
    parser.add_argument("--sales", type=_positive_int, default=defaults.sales, help="Clientes por terminal.")
    parser.add_argument(
        "--outage-seconds",
        type=_non_negative_float,
        default=0.0,
        help="Duración del corte de Internet (segundos reales).",
    )
    parser.add_argument(
        "--outage",
        default="all",
        help="Quién pierde la conexión: all, códigos separados por coma o una fracción (0.5).",
    )
    parser.add_argument(
        "--outage-start",
        type=_non_negative_float,
        default=None,
        help="Segundos reales desde el inicio hasta el corte (por defecto, a un tercio de la mañana).",
    )
    parser.add_argument(
        "--speed", type=_positive_float, default=defaults.speed, help="Aceleración del reloj (x veces el tiempo real)."
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="Semilla de los generadores aleatorios.")
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="Provoca respuestas perdidas, lotes repetidos, partidos y desordenados.",
    )
    parser.add_argument(
        "--json", action="store_true", help="Imprime el resumen como un objeto JSON en la última línea."
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=defaults.timeout, help="Tiempo de espera HTTP (segundos)."
    )
    parser.add_argument("--batch-size", type=_batch_size, default=defaults.batch_size, help="Ventas por lote (≤500).")
    parser.add_argument(
        "--settle-seconds",
        type=_non_negative_float,
        default=defaults.settle_seconds,
        help="Espera máxima a la conciliación del servidor antes de comparar.",
    )
    parser.add_argument(
        "--readback", type=int, default=defaults.readback, help="Ventas a releer para sus alertas (-1: todas)."
    )
    parser.add_argument("--no-progress", action="store_true", help="Sin barra de progreso en stderr.")
    parser.add_argument(
        "--record",
        default=None,
        help="Archivo donde escribir cada venta hecha (id, terminal, seq, resultado), un JSON por línea.",
    )


def options_from(namespace: argparse.Namespace | dict[str, Any]) -> Options:
    values = vars(namespace) if isinstance(namespace, argparse.Namespace) else dict(namespace)
    return Options(
        url=values["url"],
        demo_file=values["demo_file"],
        terminals=values.get("terminals"),
        sales=values["sales"],
        outage_seconds=values.get("outage_seconds") or 0.0,
        outage=values.get("outage") or "all",
        outage_start=values.get("outage_start"),
        speed=values["speed"],
        seed=values["seed"],
        chaos=bool(values.get("chaos")),
        json=bool(values.get("json")),
        timeout=values["timeout"],
        batch_size=values.get("batch_size") or 500,
        settle_seconds=values.get("settle_seconds", Options.settle_seconds),
        readback=values.get("readback", Options.readback),
        progress=not values.get("no_progress"),
        record=values.get("record"),
    )


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Simula cajas y kioscos payGO contra la API de sincronización POS.",
    )
    add_arguments(parser)
    return parser


def http_logs_quiet() -> None:
    """One INFO line per request from httpx would drown the progress bar: warnings only."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
