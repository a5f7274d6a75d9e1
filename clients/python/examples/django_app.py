"""Django's LOGGING setting with one BusHandler on the root logger, and two requests through Django's test client
(no server): the view's own line, and Django's "Internal Server Error" with the traceback, from logger
django.request (module django_request)."""

import logging

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF=__name__,
    LOGGING={
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"bus": {"class": "aixcl_logging.BusHandler", "subsystem": "example_django"}},
        "root": {"level": "INFO", "handlers": ["bus"]},
    },
)
django.setup()

log = logging.getLogger("shop.views")


def orders(request: HttpRequest) -> HttpResponse:
    log.info("listing orders", extra={"user_uuid": "5b0c3f0e"})
    return HttpResponse("[]")


def checkout(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("payment provider unreachable")


urlpatterns = [path("orders", orders), path("checkout", checkout)]

client = Client(raise_request_exception=False)
assert client.get("/orders").status_code == 200
assert client.get("/checkout").status_code == 500
