"""``python manage.py verify_ledgers``: recompute stock, balances and units from their
ledgers, report any drift, exit non-zero if there is one."""

from django.core.management.base import BaseCommand, CommandError

from inventory.verification import ledgers_verify


class Command(BaseCommand):
    help = "Verifica existencias, saldos y unidades contra sus libros; termina con error si hay diferencias."

    def handle(self, *args, **options):
        verification = ledgers_verify()
        self.stdout.write(
            f"Existencias verificadas: {verification.stock_rows_checked}; "
            f"saldos y unidades verificados: {verification.balance_rows_checked}."
        )
        for drift in verification.drifts:
            self.stdout.write(self.style.ERROR(f"Diferencia: {drift}"))
        if verification.drift_count:
            raise CommandError(f"{verification.drift_count} diferencias entre los valores y sus libros.")
        self.stdout.write(self.style.SUCCESS("Sin diferencias: los valores coinciden con sus libros."))
