"""``python manage.py seed_demo --output FILE``: create or reset the deterministic demo."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from paygo.demo import demo_seed


class Command(BaseCommand):
    help = "Crea (o restablece) los datos de demostración y escribe en JSON lo que necesita un cliente."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="Archivo JSON de salida (credenciales, llaves, datos).")
        parser.add_argument("--customers", type=int, default=40, help="Clientes generados por institución.")
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Permite crear la demo con DEBUG apagado (entornos de prueba, nunca producción).",
        )

    def handle(self, *args, output=None, customers=40, allow_without_debug=False, **options):
        # The demo's passwords and keys are deterministic and public: never in production.
        if not settings.DEBUG and not allow_without_debug:
            raise CommandError(
                "seed_demo crea usuarios y llaves conocidos públicamente; con DEBUG apagado exige "
                "--allow-without-debug (solo para entornos de prueba)."
            )
        data = demo_seed(customers_per_institution=customers)
        text = json.dumps(data, ensure_ascii=False, indent=2)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
            self.stdout.write(self.style.SUCCESS(f"Demo lista; datos para clientes en {output}"))
        else:
            self.stdout.write(text)
        self.stdout.write(
            "Usuarios del back office (solo para la demo):\n"
            f"  superusuario  {data['admin']['username']} / {data['admin']['password']}\n"
            f"  finanzas      {data['finance']['username']} / {data['finance']['password']}\n"
            f"  datos base    {data['data_staff']['username']} / {data['data_staff']['password']}"
        )
