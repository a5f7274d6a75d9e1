/**
 * What a Python program prints when it logs an exception with its chained cause (`logging.exception`), then one
 * plain line: the stack trace Promtail must ship as one entry, and the line after it as its own. The shipped
 * Promtail config's multiline stages are checked with it natively (promtail.test.ts) and in a container (the
 * Docker tier).
 */
export function chainedTracebackProgram(mark: string, stream: "stdout" | "stderr", after: string): string {
  return [
    "import logging, sys, time",
    `logging.basicConfig(stream=sys.${stream}, format="%(levelname)s %(name)s: %(message)s")`,
    "def charge():",
    "    try:",
    "        1 / 0",
    "    except ZeroDivisionError as e:",
    '        raise ValueError("bad invoice") from e',
    "try:",
    "    charge()",
    "except Exception:",
    `    logging.getLogger("shop").exception("charging failed ${mark}")`,
    `print(${JSON.stringify(after)}, file=sys.${stream}, flush=True)`,
  ].join("\n");
}

/** The traceback part of that program's output, as Python prints it. */
export const CHAINED_TRACEBACK =
  /^ERROR shop: charging failed \S+\nTraceback \(most recent call last\):\n[\s\S]*\nZeroDivisionError: division by zero\n\nThe above exception was the direct cause of the following exception:\n\nTraceback \(most recent call last\):\n[\s\S]*\nValueError: bad invoice$/;
