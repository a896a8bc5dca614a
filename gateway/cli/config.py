"""``anchorline config sample``: print (or write) the sample ``anchorline.toml``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", help="the settings file: a sample with every field")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    sample = sub.add_parser(
        "sample", help="every setting with its default and meaning, as anchorline.toml"
    )
    sample.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    sample.set_defaults(handler=_sample)


def _sample(args: argparse.Namespace) -> int:
    from gateway.config_sample import render_sample

    text = render_sample()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0
