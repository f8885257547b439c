"""``python manage.py simulate_pos``: run the terminal simulator against a back office.

A thin adapter: the options and the whole simulation live in the ``simulator`` package,
a pure HTTP client of the POS sync API (it imports nothing from this project).
"""

from django.core.management.base import BaseCommand, CommandError

from simulator import OptionError, SimulationAborted, run
from simulator.cli import add_arguments, http_logs_quiet, options_from


class Command(BaseCommand):
    help = "Simula cajas y kioscos vendiendo (en línea y sin conexión) contra la API de sincronización POS."

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        http_logs_quiet()
        try:
            # stdout: the summary lines (each ends with a newline, so Django's wrapper adds none);
            # stderr stays the process's own for the progress bar's carriage returns.
            summary = run(options_from(options), stdout=self.stdout)
        except (OptionError, SimulationAborted) as exc:
            raise CommandError(str(exc)) from exc
        if summary.errors:
            raise CommandError(f"{len(summary.errors)} errores durante la simulación")
