"""Nimbus bootstrap for the managed python3.x runtimes.

Nimbus runs this file as `python3 -u <dir>/bootstrap.py` with cwd = LAMBDA_TASK_ROOT. It speaks the
Lambda Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API and gives the function the programming model
of AWS's Python runtimes: handler string, context object, logging format, error shapes and error types.
Standard library only. The contract it relies on is written down in runtimes/README.md.
"""

import decimal
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

_THIS_FILE = os.path.abspath(__file__)
_API_PREFIX = "/2018-06-01/runtime"
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_EXIT_RUNTIME_API_FAILURE = 1
_EXIT_INIT_ERROR = 1

# The request id the logging filter stamps on records. Like AWS it keeps the last id after an invoke
# has finished, and is "" before the first one.
_current_request_id = ""
_current_tenant_id = None


class RuntimeFault(Exception):
    """An error the runtime itself reports, with a `Runtime.*` error type."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


class RuntimeAPIError(Exception):
    """The Runtime API cannot be used any more: the environment must end."""


# --------------------------------------------------------------------------------------------------
# Runtime API client: one keep-alive connection, no timeout (GET /next blocks until there is work).
#
# The Runtime API is plain HTTP/1.1 on loopback, so this is a small socket client rather than
# http.client: importing http.client (email.*, ssl) costs 50-60 ms of every Python cold start.

# Bounds on what the Runtime API may answer: a status line or header line, and the number of headers.
_HEADER_LINE_MAX_BYTES = 65536
_HEADERS_MAX = 100


class _Headers:
    """Response headers, looked up case-insensitively (the last value of a repeated header wins)."""

    def __init__(self):
        self._values = {}

    def add(self, name, value):
        self._values[name.lower()] = value

    def get(self, name, default=None):
        return self._values.get(name.lower(), default)


class _StaleConnection(Exception):
    """The server closed a kept-alive connection before answering."""


class RuntimeAPIClient:
    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise RuntimeAPIError("AWS_LAMBDA_RUNTIME_API must be host:port, got %r" % address)
        self.host = host.strip("[]")
        self.port = int(port)
        self.authority = address
        self.sock = None
        self.reader = None

    def _connect(self):
        self.sock = socket.create_connection((self.host, self.port))
        # The request goes out in one write anyway; NODELAY keeps the kernel from holding it back.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def _close(self):
        for closable in (self.reader, self.sock):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass
        self.sock = None
        self.reader = None

    def _request(self, method, path, body=None, headers=None):
        # A connection that sat idle while the handler ran may have been closed by the server; such
        # a request is retried once on a fresh connection. A fresh connection that fails is fatal.
        for _attempt in range(2):
            fresh = self.sock is None
            try:
                if fresh:
                    self._connect()
                self._send(method, path, body, headers)
                status, response_headers, data, will_close = self._read_response()
                if will_close:
                    self._close()
                return status, response_headers, data
            except (_StaleConnection, ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
                self._close()
                if fresh:
                    raise RuntimeAPIError("%s %s failed: %s" % (method, path, e or "connection closed")) from e
            except (OSError, ValueError) as e:
                self._close()
                raise RuntimeAPIError("%s %s failed: %s" % (method, path, e)) from e
        raise RuntimeAPIError("%s %s failed: connection closed" % (method, path))

    def _send(self, method, path, body, headers):
        body = body or b""
        head = ["%s %s HTTP/1.1" % (method, path), "Host: " + self.authority]
        if method != "GET" or body:
            head.append("Content-Length: %d" % len(body))
        for name, value in (headers or {}).items():
            head.append("%s: %s" % (name, value))
        # Head and body in one write (DESIGN.md's Nagle/delayed-ACK pitfall).
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def _line(self):
        line = self.reader.readline(_HEADER_LINE_MAX_BYTES + 1)
        if len(line) > _HEADER_LINE_MAX_BYTES:
            raise ValueError("a response line is longer than %d bytes" % _HEADER_LINE_MAX_BYTES)
        return line

    def _read_response(self):
        status_line = self._line()
        if not status_line:
            raise _StaleConnection("connection closed")
        parts = status_line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError("bad status line %r" % status_line[:100])
        version, status = parts[0], int(parts[1])
        headers = _Headers()
        for _ in range(_HEADERS_MAX + 1):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ValueError("connection closed inside the response head")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ValueError("bad header line %r" % line[:100])
            headers.add(name.strip(), value.strip())
        else:
            raise ValueError("more than %d response headers" % _HEADERS_MAX)

        connection = (headers.get("Connection") or "").lower()
        will_close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            data = self._read_chunked()
        elif headers.get("Content-Length") is not None:
            data = self._read_exactly(int(headers.get("Content-Length")))
        elif status in (204, 304) or 100 <= status < 200:
            data = b""
        else:
            data = self.reader.read()
            will_close = True
        return status, headers, data, will_close

    def _read_exactly(self, length):
        if length < 0:
            raise ValueError("negative Content-Length")
        data = self.reader.read(length)
        if len(data) != length:
            raise ValueError("connection closed inside the response body")
        return data

    def _read_chunked(self):
        chunks = []
        while True:
            size = int(self._line().split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            self._read_exactly(2)

    def next_invocation(self):
        status, headers, body = self._request("GET", _API_PREFIX + "/invocation/next")
        if status != 200:
            raise RuntimeAPIError(
                "GET /invocation/next answered %d: %s" % (status, body[:500].decode("utf-8", "replace"))
            )
        return headers, body

    def _post(self, path, body, headers, fatal_4xx):
        status, _headers, data = self._request("POST", path, body, headers)
        if 200 <= status < 300:
            return
        message = "POST %s answered %d: %s" % (path, status, data[:500].decode("utf-8", "replace"))
        if status >= 500 or fatal_4xx:
            raise RuntimeAPIError(message)
        # A 4xx on /response or /error (payload too large, invocation already finished...) is the
        # server's verdict on that invocation; this environment can still take the next one.
        sys.stderr.write("nimbus-bootstrap: %s\n" % message)

    def post_response(self, request_id, payload, content_type):
        self._post(
            _API_PREFIX + "/invocation/%s/response" % _quote(request_id),
            payload,
            {"Content-Type": content_type},
            fatal_4xx=False,
        )

    def post_error(self, request_id, error):
        self._post(
            _API_PREFIX + "/invocation/%s/error" % _quote(request_id),
            to_json(error).encode("utf-8"),
            {"Content-Type": "application/json", _ERROR_TYPE_HEADER: _header_safe(error["errorType"])},
            fatal_4xx=False,
        )

    def post_init_error(self, error):
        self._post(
            _API_PREFIX + "/init/error",
            to_json(error).encode("utf-8"),
            {"Content-Type": "application/json", _ERROR_TYPE_HEADER: _header_safe(error["errorType"])},
            fatal_4xx=True,
        )


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _quote(request_id):
    # Percent-encodes everything but RFC 3986's unreserved characters (urllib.parse.quote with
    # safe=""), without importing urllib.parse.
    return "".join(chr(b) if b in _UNRESERVED else "%%%02X" % b for b in request_id.encode("utf-8"))


def _header_safe(value):
    # Header values must be one line of latin-1 text.
    value = str(value).replace("\r", " ").replace("\n", " ")
    return value.encode("latin-1", "replace").decode("latin-1")


# --------------------------------------------------------------------------------------------------
# JSON in and out, as AWS's marshaller does it.


class _Encoder(json.JSONEncoder):
    def __init__(self):
        super().__init__(ensure_ascii=False)

    def default(self, o):
        # AWS's runtime (simplejson) writes Decimal values as numbers, e.g. from DynamoDB items.
        if isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            if o == o.to_integral_value() and o.is_finite():
                return int(o)
            return float(o)
        return super().default(o)


def to_json(obj):
    return _Encoder().encode(obj)


def marshal_response(result):
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return to_json(result).encode("utf-8"), "application/json"
    except Exception as e:
        raise RuntimeFault("Runtime.MarshalError", "Unable to marshal response: %s" % e)


def unmarshal_event(body, content_type):
    # AWS decodes the event only when it is JSON; anything else is passed on as the raw bytes. A
    # missing Content-Type is taken to be JSON (Invoke payloads are JSON).
    if content_type and "json" not in content_type.lower():
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise RuntimeFault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)


# --------------------------------------------------------------------------------------------------
# The context object.


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (k, getattr(self, k)) for k in self.__slots__)


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _object_from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, values.get(field) if isinstance(values, dict) else None)
    return obj


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise RuntimeFault(
            "Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (name, e)
        )


class LambdaContext:
    def __init__(self, request_id, deadline_ms, invoked_function_arn, client_context, cognito_identity, tenant_id):
        env = os.environ
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        # AWS passes the environment variable through unchanged: a str such as "128".
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        self.client_context = _object_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _object_from_dict(Client, self.client_context.client)

        self.identity = _object_from_dict(CognitoIdentity, {})
        if isinstance(cognito_identity, dict):
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        if self._deadline_ms is None:
            return 0
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


# --------------------------------------------------------------------------------------------------
# Logging, as AWS configures it: a handler on the root logger writing to stdout, text or JSON.


# Set by setup_logging: the environment is read only once it is the function's (see main).
_LOG_FORMAT_JSON = False
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into JSON logs.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "aws_request_id",
    "tenant_id",
    "taskName",
}


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _current_request_id or ""
        record.tenant_id = _current_tenant_id
        return True


class _StdoutHandler(logging.Handler):
    def emit(self, record):
        try:
            sys.stdout.write(self.format(record))
        except Exception:
            self.handleError(record)


def _json_timestamp(created):
    return time.strftime(_TIME_FORMAT, time.gmtime(created)) + ".%03dZ" % (int(created * 1000) % 1000)


class _JsonFormatter(logging.Formatter):
    def format(self, record):
        level = min(50, max(0, record.levelno)) // 10 * 10
        out = {
            "timestamp": _json_timestamp(record.created),
            "level": logging.getLevelName(level),
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", None),
        }
        if getattr(record, "tenant_id", None) is not None:
            out["tenantId"] = record.tenant_id
        if record.exc_info:
            etype, value, tb = record.exc_info
            out["stackTrace"] = traceback.format_tb(tb)
            out["errorType"] = etype.__name__ if etype else None
            out["errorMessage"] = str(value)
            out["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in out and not key.startswith("_"):
                out[key] = value
        out = {k: v for k, v in out.items() if v is not None}
        return json.dumps(out, ensure_ascii=False, default=str) + "\n"


def setup_logging():
    global _LOG_FORMAT_JSON
    _LOG_FORMAT_JSON = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    if _LOG_FORMAT_JSON:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", _TIME_FORMAT
            )
        )
    handler.addFilter(_RequestIdFilter())
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    level = {"TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(level, level)
    root = logging.getLogger()
    if level in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"):
        root.setLevel(level)
    # Without AWS_LAMBDA_LOG_LEVEL the root logger keeps Python's default, WARNING, as on AWS.
    root.addHandler(handler)


def log_error(error):
    """Print an unhandled error the way AWS's runtime does on its stdout sink.

    Text: "[ERROR] <type>: <message>", "Traceback (most recent call last):" and the frames, joined by
    "\\r" (so a line-oriented log collector keeps them as one record) with leading spaces turned into
    no-break spaces. JSON: one object with level ERROR.
    """
    if _LOG_FORMAT_JSON:
        record = {"timestamp": _json_timestamp(time.time()), "level": "ERROR"}
        record.update(error)
        sys.stdout.write(to_json(record) + "\n")
        return
    description = "[ERROR]"
    if error.get("errorType"):
        description += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            description += ":"
        description += " " + error["errorMessage"]
    lines = [description]
    if error.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        for element in error["stackTrace"]:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    sys.stdout.write("\r".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------
# Errors.


def make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def error_from_exception(exc_info, request_id=None):
    etype, value, tb = exc_info
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    # Drop this file's own frames from the top, so the trace starts in the function's code.
    for i, frame in enumerate(frames):
        if frame[0] != _THIS_FILE:
            frames = frames[i:]
            break
    return make_error(str(value), etype.__name__, traceback.format_list(frames), request_id)


# --------------------------------------------------------------------------------------------------
# Init.


def setup_sys_path(task_root):
    # Python put this file's directory first; the function must see its own code there instead.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(_THIS_FILE):
        sys.path.pop(0)
    paths = [task_root] if task_root else []
    # The SDK Nimbus installed comes right after the function's code: a boto3 in the zip wins.
    for sdk in (os.environ.get("NIMBUS_PYTHON_SDK_PATH") or "").split(os.pathsep):
        if sdk:
            paths.append(sdk)
    for path in reversed(paths):
        while path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    # The host interpreter's own sys.path entries that the sandbox shows at another path than the files
    # naming them say (under the host's /tmp): last, where the host's site-packages are.
    for path in (os.environ.get("NIMBUS_PYTHON_HOST_PATH") or "").split(os.pathsep):
        if path and path not in sys.path:
            sys.path.append(path)


def load_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise RuntimeFault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))

    if modname.split(".")[0] in sys.builtin_module_names:
        raise RuntimeFault(
            "Runtime.BuiltInModuleConflict", "Cannot use built-in module %s as a handler module" % modname
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise RuntimeFault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise RuntimeFault(
            "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace
        )
    # Any other exception raised while the module runs propagates: it is reported with its own type.

    try:
        return getattr(module, fname)
    except AttributeError:
        raise RuntimeFault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))


# --------------------------------------------------------------------------------------------------
# One invocation.


def _header(headers, name):
    value = headers.get(name)
    return value if value else None


def handle_invocation(client, request_handler, headers, body):
    global _current_request_id, _current_tenant_id

    request_id = _header(headers, "Lambda-Runtime-Aws-Request-Id")
    if request_id is None:
        sys.stderr.write("nimbus-bootstrap: /invocation/next answered without Lambda-Runtime-Aws-Request-Id\n")
        return
    _current_request_id = request_id
    _current_tenant_id = _header(headers, "Lambda-Runtime-Aws-Tenant-Id")

    trace_id = _header(headers, "Lambda-Runtime-Trace-Id")
    if trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)

    try:
        deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "").strip())
    except ValueError:
        deadline_ms = None

    error = None
    try:
        client_context = _header(headers, "Lambda-Runtime-Client-Context")
        if client_context is not None:
            client_context = _parse_json_header(client_context, "Client Context")
        cognito_identity = _header(headers, "Lambda-Runtime-Cognito-Identity")
        if cognito_identity is not None:
            cognito_identity = _parse_json_header(cognito_identity, "Cognito Identity")
        context = LambdaContext(
            request_id,
            deadline_ms,
            _header(headers, "Lambda-Runtime-Invoked-Function-Arn"),
            client_context,
            cognito_identity,
            _current_tenant_id,
        )
        event = unmarshal_event(body, headers.get("Content-Type"))
        result = request_handler(event, context)
        payload, content_type = marshal_response(result)
    except RuntimeFault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, request_id)
    except Exception:
        error = error_from_exception(sys.exc_info(), request_id)

    if error is not None:
        log_error(error)
        client.post_error(request_id, error)
    else:
        client.post_response(request_id, payload, content_type)


# --------------------------------------------------------------------------------------------------


# A pre-started interpreter's function: at most this much (its directory and environment).
_PRESTART_MESSAGE_MAX_BYTES = 1 << 20


def await_function(fd):
    """Waits, pre-started, for the function this interpreter is to run (runtimes/README.md,
    "Pre-started interpreters"): reads its working directory and environment from `fd`, replaces
    this process's environment with it and changes to that directory. False: abandoned."""
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        size += len(chunk)
        if size > _PRESTART_MESSAGE_MAX_BYTES:
            raise RuntimeAPIError("the function's environment is over %d bytes" % _PRESTART_MESSAGE_MAX_BYTES)
        chunks.append(chunk)
    os.close(fd)
    fields = b"".join(chunks).split(b"\0")
    if not fields[0]:
        return False
    # What the interpreter started with is the part of the function's environment it reads at start,
    # plus what it added itself (PEP 538's LC_CTYPE coercion): the latter stays, as in a fresh start.
    started_with = dict(os.environb)
    started_with.pop(b"_NIMBUS_PRESTART_FD", None)
    os.environ.clear()
    # In order: a key given twice ends with its last value, as in a fresh interpreter's os.environ.
    for entry in fields[1:]:
        key, sep, value = entry.partition(b"=")
        if sep and key:
            os.environb[key] = value
    for key, value in started_with.items():
        os.environb.setdefault(key, value)
    os.chdir(fields[0])
    return True


def main():
    # `-u` makes stdout/stderr unbuffered; make sure of it even when started without the flag.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(write_through=True)
        except (AttributeError, ValueError):
            pass

    prestart_fd = os.environ.get("_NIMBUS_PRESTART_FD")
    if prestart_fd is not None:
        try:
            if not await_function(int(prestart_fd)):
                return 0
        except (OSError, ValueError, RuntimeAPIError) as e:
            sys.stderr.write("nimbus-bootstrap: waiting for the function: %s\n" % e)
            return _EXIT_RUNTIME_API_FAILURE

    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("nimbus-bootstrap: AWS_LAMBDA_RUNTIME_API is not set\n")
        return _EXIT_RUNTIME_API_FAILURE
    try:
        client = RuntimeAPIClient(address)
    except RuntimeAPIError as e:
        sys.stderr.write("nimbus-bootstrap: %s\n" % e)
        return _EXIT_RUNTIME_API_FAILURE

    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    setup_sys_path(task_root)

    try:
        setup_logging()
        request_handler = load_handler(os.environ.get("_HANDLER", ""))
    except RuntimeFault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace)
        return _report_init_error(client, error)
    except Exception:
        return _report_init_error(client, error_from_exception(sys.exc_info()))

    try:
        while True:
            headers, body = client.next_invocation()
            handle_invocation(client, request_handler, headers, body)
    except RuntimeAPIError as e:
        sys.stderr.write("nimbus-bootstrap: Runtime API failure, exiting: %s\n" % e)
        return _EXIT_RUNTIME_API_FAILURE


def _report_init_error(client, error):
    log_error(error)
    try:
        client.post_init_error(error)
    except RuntimeAPIError as e:
        sys.stderr.write("nimbus-bootstrap: could not report the init error: %s\n" % e)
    return _EXIT_INIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
