"""``python -m convert SRC -o OUT.tflite --mode MODE [options]``: parse, run, map errors to exits.

Exit status: 0 written and verified; 2 bad input or a conversion TensorFlow refuses;
3 converted but failed a check (does not run in the serving runtime, or misses
``--min-agreement``). Errors are one line on stderr (``convert: error: ...``), never a
traceback (set ``CONVERT_DEBUG=1`` to see one), and leave no output file.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from convert.calibration import Preprocessing
from convert.errors import EXIT_BAD_INPUT, ConvertError
from convert.progress import keep_terminal
from convert.quantize import MODES
from convert.report import CheckFailed

EPILOG = """modes:
{modes}

exit status: 0 written and verified, 2 bad input or conversion refused, 3 converted but a
check failed (does not run in the serving runtime, or below --min-agreement); nothing is
written unless the status is 0.""".format(
    modes="\n".join(f"  {name:<14} {text}" for name, text in MODES.items())
)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line, with names a user can guess."""
    parser = _Parser(
        prog="python -m convert",
        description="Quantize a Keras model or SavedModel into a .tflite file and prove it "
        "is smaller, still right, and runs in the serving runtime.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source", metavar="SRC", type=Path, help=".keras/.h5 file or SavedModel dir"
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT.tflite", help="the file to write"
    )
    parser.add_argument(
        "--mode", choices=list(MODES), default="int8", help="quantization mode (default: int8)"
    )
    parser.add_argument(
        "--signature",
        metavar="NAME",
        action="append",
        default=[],
        help="SavedModel signature to convert; repeat for several (default: every signature, "
        "each under its own key in one .tflite)",
    )
    served = parser.add_argument_group(
        "served names (the API clients use; default: as the model was saved)"
    )
    served.add_argument(
        "--input-names",
        type=_names,
        default=(),
        metavar="NEW[,NEW...]|OLD=NEW[,...]",
        help="name the inputs: new names in the signature's order, or OLD=NEW pairs "
        "(calibration and eval data are keyed by the new names)",
    )
    served.add_argument(
        "--output-names",
        type=_names,
        default=(),
        metavar="NEW[,NEW...]|OLD=NEW[,...]",
        help="name the outputs, the same way",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--calibration",
        type=Path,
        metavar="PATH",
        help=".npy, .npz (keys = input names) or a directory of images",
    )
    data.add_argument(
        "--calibration-samples",
        type=_positive_int,
        default=200,
        metavar="N",
        help="samples used to calibrate (default: 200)",
    )
    data.add_argument(
        "--eval",
        type=Path,
        metavar="PATH",
        help="held-out data in the same forms (.npz key 'labels' optional); default: a slice "
        "of the calibration data not used to calibrate",
    )
    data.add_argument(
        "--scale",
        type=float,
        metavar="X",
        help="multiply data by this first (default: 1/255 for images, 1)",
    )
    data.add_argument(
        "--mean",
        type=_floats,
        metavar="M[,M...]",
        default=(0.0,),
        help="subtract (one or per channel)",
    )
    data.add_argument(
        "--std", type=_floats, default=(1.0,), help="then divide (one or per channel)"
    )
    meta = parser.add_argument_group("metadata (TFLite metadata schema, written into the .tflite)")
    meta.add_argument(
        "--labels",
        type=Path,
        metavar="PATH",
        help="text file, one label a line: the classifier output's TENSOR_AXIS_LABELS file "
        "(count checked against the output's last dimension)",
    )
    meta.add_argument("--name", help="the model's name")
    meta.add_argument("--description", help="what the model does")
    meta.add_argument("--version", help="the model's version")
    checks = parser.add_argument_group("checks and report")
    checks.add_argument(
        "--min-agreement",
        type=_fraction,
        metavar="X",
        help="fail (exit 3, no output) if top-1 agreement (classifiers) or "
        "1 - normalized error (regressors) of any output is below X, e.g. 0.99",
    )
    checks.add_argument(
        "--report", type=Path, metavar="PATH.json", help="also write the report as JSON"
    )
    checks.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        default=1,
        help="threads for the latency comparison (default: 1, as the function's interpreters)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    keep_terminal()  # progress bars must reach the terminal while TensorFlow's noise is captured
    options = _options(args)
    from convert.pipeline import run  # after parsing: --help needs no numpy or TensorFlow

    try:
        report = run(options)
    except CheckFailed as e:
        print(e.report.table())
        return _fail(e)
    except ConvertError as e:
        return _fail(e)
    except KeyboardInterrupt:
        print("convert: interrupted; nothing written", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or an unforeseen TensorFlow failure: still one line
        if os.environ.get("CONVERT_DEBUG"):
            traceback.print_exc()
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(
            f"convert: internal error: {type(e).__name__}: {first} "
            "(set CONVERT_DEBUG=1 for a traceback); nothing written",
            file=sys.stderr,
        )
        return 1
    print(report.table())
    return 0


def _options(args: argparse.Namespace):  # -> pipeline.Options (imported lazily)
    from convert.pipeline import Options

    return Options(
        source=args.source,
        output=args.output,
        mode=args.mode,
        signatures=tuple(args.signature),
        input_names=args.input_names,
        output_names=args.output_names,
        calibration=args.calibration,
        eval=args.eval,
        calibration_samples=args.calibration_samples,
        preprocessing=Preprocessing(scale=args.scale, mean=args.mean, std=args.std),
        min_agreement=args.min_agreement,
        report=args.report,
        threads=args.threads,
        labels=args.labels,
        name=args.name,
        description=args.description,
        version=args.version,
    )


def _fail(error: ConvertError) -> int:
    print(f"convert: error: {error.message}", file=sys.stderr)
    return error.exit_code


def _names(text: str) -> tuple[str, ...]:
    from convert import names

    try:
        return names.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a number or comma-separated numbers: {text!r}"
        ) from None
