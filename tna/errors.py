"""The one exception type a user sees.

A `TnaError` is a user mistake or an environment problem (unknown dataset, missing data root,
corrupt checkpoint). The CLI prints it as one line, `error: <message>`, and exits with code 2,
without a traceback. Anything else is a bug and keeps its traceback.
"""


class TnaError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""
