// Nimbus bootstrap for the managed nodejs runtimes.
//
// Nimbus runs this file as `node <dir>/bootstrap.js` with cwd = LAMBDA_TASK_ROOT. It speaks the Lambda
// Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API and gives the function the programming model of
// AWS's nodejs20.x runtime: handler string, CommonJS and ES modules, async and callback handlers,
// context object, patched console, error shapes and exit codes. Node's standard library only. The
// contract it relies on is written down in runtimes/README.md.
//
// The file must parse both as CommonJS and as an ES module (a package.json with "type": "module" above
// the directory it is written to would make Node load it as ESM), so it uses no `require`, `module`,
// `__filename`, `import.meta` nor top-level await: only dynamic import().

'use strict';

const API_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const EXIT_RUNTIME_API_FAILURE = 1;
const EXIT_UNCAUGHT_EXCEPTION = 129; // as AWS: also used after an init error
const EXIT_UNHANDLED_REJECTION = 128; // as AWS

let http, fs, path, url, util, nodeModule, nodeStream;
let userRequire; // a require() for the function's CommonJS modules

// ------------------------------------------------------------------------------------------------
// Errors the runtime itself raises. Their `name` is the errorType reported.

class RuntimeError extends Error {}
function runtimeErrorClass(shortName) {
  const cls = class extends RuntimeError {};
  Object.defineProperty(cls, 'name', { value: shortName });
  cls.prototype.name = `Runtime.${shortName}`;
  return cls;
}
const ImportModuleError = runtimeErrorClass('ImportModuleError');
const HandlerNotFound = runtimeErrorClass('HandlerNotFound');
const MalformedHandlerName = runtimeErrorClass('MalformedHandlerName');
const UserCodeSyntaxError = runtimeErrorClass('UserCodeSyntaxError');
const NodeJsExit = runtimeErrorClass('NodeJsExit');
const UnhandledPromiseRejection = runtimeErrorClass('UnhandledPromiseRejection');

const NODE_JS_EXIT_MESSAGE =
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused ' +
  'by a Promise that was never settled. For more information, see ' +
  'https://nodejs.org/docs/latest/api/process.html#exit-codes';

class RuntimeAPIError extends Error {}

function isErrorLike(obj) {
  return (
    obj &&
    typeof obj.name === 'string' &&
    typeof obj.message === 'string' &&
    typeof obj.stack === 'string' &&
    obj.name &&
    obj.message &&
    obj.stack
  );
}

// The body posted to /error and /init/error (AWS's Node runtime puts the stack in `trace`).
function toErrorResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: typeof error.stack === 'string' ? error.stack.split('\n') : [],
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_e) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
      trace: [],
    };
  }
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// The text after "Invoke Error " / "Uncaught Exception " in the log: a tab and the error as JSON.
function formatErrorForLog(error) {
  const withProperties = (_key, value) => {
    if (value instanceof Error) {
      const out = Object.assign(
        { errorType: value.name, errorMessage: value.message, code: value.code },
        value,
      );
      if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
      return out;
    }
    return value;
  };
  try {
    return '\t' + JSON.stringify(error, withProperties);
  } catch (_e) {
    return '\t' + JSON.stringify(toErrorResponse(error));
  }
}

// ------------------------------------------------------------------------------------------------
// Console, patched as AWS does: every line is "<ISO time>\t<request id>\t<LEVEL>\t<message>" on
// stdout, newlines inside a message turned into "\r" so one call stays one record.

const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');
const LEVELS = {
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
};
const logErrorStructured = { fn: null };

function currentRequestId() {
  return globalThis[REQUEST_ID_SYMBOL];
}
function setCurrentRequestId(id) {
  globalThis[REQUEST_ID_SYMBOL] = id;
}

function writeLogLine(line) {
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: (value.constructor && value.constructor.name) || 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function formatJsonLog(level, message, params) {
  const record = {
    timestamp: new Date().toISOString(),
    level: level.name,
    requestId: currentRequestId(),
  };
  if (params.length === 0) {
    record.message = message;
    try {
      return JSON.stringify(record, jsonErrorReplacer);
    } catch (_e) {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  const all = [message, ...params];
  record.message = util.format(...all);
  const err = all.find((p) => p instanceof Error);
  if (err) {
    record.errorType = (err.constructor && err.constructor.name) || 'UnknownError';
    record.errorMessage = err.message;
    record.stackTrace = typeof err.stack === 'string' ? err.stack.split('\n') : [];
  }
  return JSON.stringify(record);
}

function patchConsole() {
  const json = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const minimum = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const noop = () => {};
  const logger = (level) => {
    if (level.priority < minimum.priority && level !== LEVELS.FATAL) return noop;
    if (json) return (message, ...params) => writeLogLine(formatJsonLog(level, message, params));
    return (message, ...params) =>
      writeLogLine(
        `${new Date().toISOString()}\t${currentRequestId()}\t${level.name}\t${util.format(message, ...params)}`,
      );
  };
  console.trace = logger(LEVELS.TRACE);
  console.debug = logger(LEVELS.DEBUG);
  console.info = logger(LEVELS.INFO);
  console.log = console.info;
  console.warn = logger(LEVELS.WARN);
  console.error = logger(LEVELS.ERROR);
  console.fatal = logger(LEVELS.FATAL);
  logErrorStructured.fn = json
    ? (_message, err) => console.error(intoError(err))
    : (message, err) => console.error(message, formatErrorForLog(intoError(err)));
}

function logError(message, err) {
  logErrorStructured.fn(message, err);
}

// ------------------------------------------------------------------------------------------------
// Runtime API client: one keep-alive connection, no timeout (GET /next blocks until there is work).
// The agent's idle socket is unref'd, so it does not keep the event loop alive while a handler runs:
// 'beforeExit' fires when the function's own work is done, which callback handlers rely on.

class RuntimeClient {
  constructor(address) {
    const match = /^(.*):(\d+)$/.exec(address || '');
    if (!match || !match[1]) {
      throw new RuntimeAPIError(`AWS_LAMBDA_RUNTIME_API must be host:port, got ${JSON.stringify(address)}`);
    }
    this.hostname = match[1].replace(/^\[(.*)\]$/, '$1');
    this.port = parseInt(match[2], 10);
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  request(method, requestPath, body, headers, retried = false) {
    return new Promise((resolve, reject) => {
      const options = {
        hostname: this.hostname,
        port: this.port,
        path: requestPath,
        method,
        agent: this.agent,
        headers: Object.assign({}, headers || {}),
      };
      if (body !== undefined) options.headers['Content-Length'] = Buffer.byteLength(body);
      const req = http.request(options, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', (e) => reject(new RuntimeAPIError(`${method} ${requestPath} failed: ${e.message}`)));
      });
      req.on('socket', (socket) => socket.setNoDelay(true));
      req.on('error', (e) => {
        // A kept-alive connection the server closed while the handler ran: retry once, fresh.
        if (req.reusedSocket && !retried && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
          this.request(method, requestPath, body, headers, true).then(resolve, reject);
          return;
        }
        reject(new RuntimeAPIError(`${method} ${requestPath} failed: ${e.message}`));
      });
      req.end(body);
    });
  }

  async next() {
    const res = await this.request('GET', `${API_PREFIX}/invocation/next`);
    if (res.status !== 200) {
      throw new RuntimeAPIError(`GET /invocation/next answered ${res.status}: ${res.body.slice(0, 500)}`);
    }
    return res;
  }

  async post(requestPath, body, headers, fatal4xx) {
    const res = await this.request('POST', requestPath, body, headers);
    if (res.status >= 200 && res.status < 300) return;
    const message = `POST ${requestPath} answered ${res.status}: ${res.body.slice(0, 500)}`;
    if (res.status >= 500 || fatal4xx) throw new RuntimeAPIError(message);
    // A 4xx on /response or /error is the server's verdict on that invocation; carry on.
    process.stderr.write(`nimbus-bootstrap: ${message}\n`);
  }

  postResponse(id, bodyString) {
    return this.post(
      `${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      bodyString,
      { 'Content-Type': 'application/json' },
      false,
    );
  }

  postError(id, error) {
    const response = toErrorResponse(error);
    return this.post(
      `${API_PREFIX}/invocation/${encodeURIComponent(id)}/error`,
      JSON.stringify(response),
      { 'Content-Type': 'application/json', [ERROR_TYPE_HEADER]: headerSafe(response.errorType) },
      false,
    );
  }

  postInitError(error) {
    const response = toErrorResponse(error);
    return this.post(
      `${API_PREFIX}/init/error`,
      JSON.stringify(response),
      { 'Content-Type': 'application/json', [ERROR_TYPE_HEADER]: headerSafe(response.errorType) },
      true,
    );
  }
}

function headerSafe(value) {
  // One line of latin-1 text, or Node refuses to send the header.
  return String(value).replace(/[\r\n]/g, ' ').replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');
}

// ------------------------------------------------------------------------------------------------
// Loading the handler.

function nearestPackageIsModule(folder) {
  // The nearest package.json decides whether .js is an ES module; a node_modules folder or the
  // filesystem root ends the search.
  for (;;) {
    if (folder.endsWith(`${path.sep}node_modules`)) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
        return Boolean(pkg && pkg.type === 'module');
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    const parent = path.dirname(folder);
    if (parent === folder) return false;
    folder = parent;
  }
}

function tryRequire(file) {
  return fs.existsSync(file) ? userRequire(file) : undefined;
}

async function tryImport(file) {
  return fs.existsSync(file) ? import(url.pathToFileURL(file).href) : undefined;
}

async function loadModule(taskRoot, moduleRoot, moduleName) {
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  // Same order as AWS: the extensionless path, .js (CommonJS unless "type": "module"), .mjs, .cjs,
  // and last Node's own resolution from the task root (e.g. a package in node_modules).
  const extensionless = tryRequire(base);
  if (extensionless) return extensionless;
  const isModule = nearestPackageIsModule(path.dirname(base));
  if (!isModule) {
    const cjs = tryRequire(base + '.js');
    if (cjs) return cjs;
  }
  const loaded =
    (isModule && (await tryImport(base + '.js'))) || (await tryImport(base + '.mjs')) || tryRequire(base + '.cjs');
  if (loaded) return loaded;
  return userRequire(userRequire.resolve(moduleName, { paths: [taskRoot, moduleRoot] }));
}

async function loadHandler(taskRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const moduleAndHandler = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(moduleAndHandler));
  const match = /^([^.]*)\.(.*)$/.exec(moduleAndHandler);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  let app;
  try {
    app = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) {
      const err = new UserCodeSyntaxError(String(e));
      if (typeof e.stack === 'string') err.stack = e.stack;
      throw err;
    }
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(String(e));
    throw e;
  }
  const handler = handlerPath.split('.').reduce((obj, key) => obj && obj[key], app);
  if (!handler) throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${fullHandler} is not a function`);
  return handler;
}

// ------------------------------------------------------------------------------------------------
// The invoke loop.

let client;
let handler;
let handlerIsAsync = false;
let beforeExitListener = null; // run once when the event loop empties during an invocation
let exiting = false;

// What a stray exception or rejection does: report it, then end the environment. Before the first
// invocation it is an init error; afterwards it fails the current (or last) invocation, as on AWS.
let strayErrorTarget = null; // null = init, else the request id

function onStrayError(error, exitCode) {
  if (exiting) return;
  exiting = true;
  const report =
    strayErrorTarget === null ? client.postInitError(error) : client.postError(strayErrorTarget, error);
  report.catch((e) => process.stderr.write(`nimbus-bootstrap: could not report the error: ${e.message}\n`))
    .finally(() => process.exit(exitCode));
}

function fatalRuntimeAPIError(e) {
  if (exiting) return;
  exiting = true;
  process.stderr.write(`nimbus-bootstrap: Runtime API failure, exiting: ${e.message}\n`);
  process.exit(EXIT_RUNTIME_API_FAILURE);
}

function scheduleNext() {
  setImmediate(() => {
    invokeOnce().catch((e) => {
      if (e instanceof RuntimeAPIError) {
        fatalRuntimeAPIError(e);
        return;
      }
      console.log(`Unexpected Top Level Error: ${e}`);
      onStrayError(e, EXIT_UNCAUGHT_EXCEPTION);
    });
  });
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

async function invokeOnce() {
  const { headers, body } = await client.next();
  const id = headers['lambda-runtime-aws-request-id'];
  if (!id) {
    process.stderr.write('nimbus-bootstrap: /invocation/next answered without Lambda-Runtime-Aws-Request-Id\n');
    scheduleNext();
    return;
  }
  setCurrentRequestId(id);
  strayErrorTarget = id;

  const traceId = headers['lambda-runtime-trace-id'];
  if (traceId) process.env._X_AMZN_TRACE_ID = traceId;
  else delete process.env._X_AMZN_TRACE_ID;

  // Completion: the first of callback / done / succeed / fail / the returned promise wins; the
  // rest are ignored. `reported` guards the single POST per invocation.
  let settled = false;
  let reported = false;
  let waitForEmptyEventLoop = true;

  const postError = (err) => {
    reported = true;
    logError('Invoke Error', err);
    client.postError(id, err).then(scheduleNext, fatalRuntimeAPIError);
  };
  const complete = (result) => {
    if (reported) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    let bodyString;
    try {
      bodyString = JSON.stringify(result === undefined ? null : result);
    } catch (_e) {
      postError(new Error('Unable to stringify response body'));
      return;
    }
    reported = true;
    client.postResponse(id, bodyString === undefined ? 'null' : bodyString).then(scheduleNext, fatalRuntimeAPIError);
  };
  const once = (fn) =>
    function (...args) {
      if (settled) return;
      settled = true;
      fn(...args);
    };

  const callback = once((err, result) => {
    beforeExitListener = null;
    if (err !== undefined && err !== null) {
      postError(err);
    } else if (!waitForEmptyEventLoop) {
      complete(result);
    } else {
      // AWS answers a callback only once the event loop is empty (timers, sockets... all done).
      beforeExitListener = () => setImmediate(() => complete(result));
    }
  });
  const doneImpl = (err, result) => {
    beforeExitListener = null;
    if (err !== undefined && err !== null) postError(err);
    else complete(result);
  };
  const done = once(doneImpl);
  const succeed = once((result) => doneImpl(null, result));
  const fail = once((err) => doneImpl(err === undefined || err === null ? 'handled' : err, null));

  // If the event loop empties and nothing has answered: a non-async handler succeeds with null, an
  // async one (whose promise can no longer settle) fails with Runtime.NodeJsExit.
  beforeExitListener = () => {
    settled = true;
    if (handlerIsAsync) {
      postError(new NodeJsExit(NODE_JS_EXIT_MESSAGE));
    } else {
      reported = true;
      client.postResponse(id, 'null').then(scheduleNext, fatalRuntimeAPIError);
    }
  };

  try {
    const deadline = Number(headers['lambda-runtime-deadline-ms']);
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
      succeed,
      fail,
      done,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: id,
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis() {
        return Number.isFinite(deadline) ? deadline - Date.now() : 0;
      },
    };
    const event = JSON.parse(body);
    if (handler[STREAMING_SYMBOL] === 'response') {
      settled = true;
      reported = true;
      beforeExitListener = null;
      invokeStreaming(id, event, context);
      return;
    }
    const result = handler(event, context, callback);
    if (result && typeof result.then === 'function') {
      // Only a returned promise (thenable) answers: a plain return value of a non-async handler is
      // ignored, as in nodejs20.x.
      result.then(succeed, fail);
    }
  } catch (err) {
    callback(err);
  }
}

// ------------------------------------------------------------------------------------------------
// Response streaming: `awslambda.streamifyResponse(handler)` marks a handler that takes
// (event, responseStream, context); its bytes go to /response as a chunked body with
// `Lambda-Runtime-Function-Response-Mode: streaming`, written as the function writes them. An error
// after the first byte is reported in the trailers (`Lambda-Runtime-Function-Error-Type`, and the
// error JSON base64-encoded in `Lambda-Runtime-Function-Error-Body`), before it as an ordinary /error.
// `awslambda.HttpResponseStream.from(stream, prelude)` makes the body a function URL's HTTP response:
// content type application/vnd.awslambda.http-integration-response, the prelude JSON (statusCode,
// headers, cookies), eight NUL bytes, then the payload.

const STREAMING_SYMBOL = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const ERROR_BODY_TRAILER = 'Lambda-Runtime-Function-Error-Body';

function installAwsLambdaGlobal() {
  class HttpResponseStream {
    static from(underlyingStream, prelude) {
      underlyingStream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
      const json = Buffer.from(JSON.stringify(prelude || {}));
      underlyingStream._prelude = Buffer.concat([json, Buffer.alloc(8)]);
      return underlyingStream;
    }
  }
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[STREAMING_SYMBOL] = 'response';
      if (options && Number.isInteger(options.highWaterMark)) handler[HANDLER_HIGHWATERMARK] = options.highWaterMark;
      return handler;
    },
    HttpResponseStream,
  };
}

function makeResponseStream(id) {
  // The request to /response is opened at the first write (or the end), so setContentType and
  // HttpResponseStream.from work until then.
  let req = null;
  let answered = null;
  let contentType = 'application/octet-stream';
  const open = (self) => {
    req = http.request({
      hostname: client.hostname,
      port: client.port,
      path: `${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`,
      method: 'POST',
      agent: client.agent,
      headers: {
        'Content-Type': contentType,
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: `${ERROR_TYPE_HEADER}, ${ERROR_BODY_TRAILER}`,
      },
    });
    req.on('socket', (socket) => socket.setNoDelay(true));
    answered = new Promise((resolve, reject) => {
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', (e) => reject(new RuntimeAPIError(`POST /response (streaming) failed: ${e.message}`)));
    });
    if (self._prelude) req.write(self._prelude);
  };
  const stream = new nodeStream.Writable({
    write(chunk, encoding, callback) {
      if (!req) open(this);
      req.write(chunk, encoding, callback);
    },
    final(callback) {
      if (!req) open(this);
      callback();
    },
  });
  stream.setContentType = (value) => {
    if (req) throw new Error('Content type cannot be set after the stream has been written to');
    contentType = String(value);
  };
  // Ends the invocation: the body (with error trailers for `err`), or a plain /error if nothing was sent.
  stream._finishInvocation = async (err) => {
    if (err !== null && err !== undefined && !req) {
      logError('Invoke Error', err);
      return client.postError(id, err);
    }
    if (err !== null && err !== undefined) {
      logError('Invoke Error', err);
      const response = toErrorResponse(err);
      req.addTrailers({
        [ERROR_TYPE_HEADER]: headerSafe(response.errorType),
        [ERROR_BODY_TRAILER]: Buffer.from(JSON.stringify(response)).toString('base64'),
      });
    } else if (!stream.writableFinished) {
      await new Promise((resolve) => {
        stream.once('finish', resolve);
        stream.once('error', resolve);
        if (!stream.writableEnded) stream.end();
      });
    }
    req.end();
    const res = await answered;
    if (res.status >= 500) throw new RuntimeAPIError(`POST /response (streaming) answered ${res.status}: ${res.body}`);
    if (res.status >= 300) process.stderr.write(`nimbus-bootstrap: POST /response answered ${res.status}: ${res.body}\n`);
  };
  return stream;
}

function invokeStreaming(id, event, context) {
  const stream = makeResponseStream(id);
  let result;
  try {
    result = Promise.resolve(handler(event, stream, context));
  } catch (err) {
    result = Promise.reject(err);
  }
  result
    .then(
      () => stream._finishInvocation(null),
      (err) => stream._finishInvocation(err),
    )
    .then(scheduleNext, fatalRuntimeAPIError);
}

// ------------------------------------------------------------------------------------------------
// A pre-started interpreter (runtimes/README.md, "Pre-started interpreters") waits for its function's
// working directory and environment before it reads either.

const PRESTART_MESSAGE_MAX_BYTES = 1 << 20;

// Returns false when the environment was abandoned before a function came.
function awaitFunction(fd) {
  const chunks = [];
  let size = 0;
  const buffer = Buffer.alloc(65536);
  for (;;) {
    const n = fs.readSync(fd, buffer, 0, buffer.length, null);
    if (n === 0) break;
    size += n;
    if (size > PRESTART_MESSAGE_MAX_BYTES) {
      throw new RuntimeAPIError(`the function's environment is over ${PRESTART_MESSAGE_MAX_BYTES} bytes`);
    }
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(fd);
  const fields = Buffer.concat(chunks).toString('utf8').split('\0');
  if (!fields[0]) return false;
  // What the interpreter started with is the part of the function's environment it reads at start,
  // plus anything it added itself: the latter stays, as in a fresh start.
  const startedWith = { ...process.env };
  delete startedWith._NIMBUS_PRESTART_FD;
  for (const key of Object.keys(process.env)) delete process.env[key];
  // A key given twice keeps its first value, as getenv reads a fresh process's environment.
  for (const entry of fields.slice(1)) {
    const eq = entry.indexOf('=');
    if (eq > 0 && !(entry.slice(0, eq) in process.env)) process.env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  for (const [key, value] of Object.entries(startedWith)) {
    if (!(key in process.env)) process.env[key] = value;
  }
  process.chdir(fields[0]);
  return true;
}

// Runs one request and response through Node's HTTP client and server code on a throwaway loopback
// listener, so that the first Runtime API exchanges after the function arrives do not pay for loading
// and compiling that code (about 10 ms each measured on a cold Node 20). Pre-started interpreters only.
function warmUpHttp() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    server.on('error', () => resolve());
    server.listen(0, '127.0.0.1', () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const body = '{}';
      const req = http.request(
        {
          host: '127.0.0.1',
          port: server.address().port,
          method: 'POST',
          path: '/',
          agent,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            agent.destroy();
            server.close(() => resolve());
          });
        },
      );
      req.on('socket', (socket) => socket.setNoDelay(true));
      req.on('error', () => {
        agent.destroy();
        server.close(() => resolve());
      });
      req.end(body);
    });
  });
}

async function main() {
  [http, fs, path, url, util, nodeModule, nodeStream] = await Promise.all([
    import('node:http'),
    import('node:fs'),
    import('node:path'),
    import('node:url'),
    import('node:util'),
    import('node:module'),
    import('node:stream'),
  ]);
  const prestartFd = process.env._NIMBUS_PRESTART_FD;
  if (prestartFd !== undefined) {
    await warmUpHttp();
    try {
      if (!awaitFunction(Number(prestartFd))) process.exit(0);
    } catch (e) {
      process.stderr.write(`nimbus-bootstrap: waiting for the function: ${e && e.message ? e.message : e}\n`);
      process.exit(EXIT_RUNTIME_API_FAILURE);
    }
  }
  patchConsole();

  try {
    client = new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API);
  } catch (e) {
    fatalRuntimeAPIError(e);
    return;
  }

  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    onStrayError(error, EXIT_UNCAUGHT_EXCEPTION);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason);
    error.reason = reason;
    error.promise = promise;
    logError('Unhandled Promise Rejection', error);
    onStrayError(error, EXIT_UNHANDLED_REJECTION);
  });
  process.on('beforeExit', () => {
    const listener = beforeExitListener;
    beforeExitListener = null;
    if (listener) listener();
  });

  installAwsLambdaGlobal();
  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  // require() for CommonJS code, anchored at this file (as AWS's is at its runtime's index.mjs).
  userRequire = nodeModule.createRequire(path.resolve(process.argv[1] || path.join(taskRoot, 'bootstrap.js')));
  try {
    handler = await loadHandler(taskRoot, process.env._HANDLER || '');
  } catch (error) {
    // As on AWS: logged as an uncaught exception, posted to /init/error, exit 129.
    logError('Uncaught Exception', error);
    onStrayError(error, EXIT_UNCAUGHT_EXCEPTION);
    return;
  }
  handlerIsAsync = Boolean(handler.constructor && handler.constructor.name === 'AsyncFunction');
  scheduleNext();
}

main().catch((e) => {
  process.stderr.write(`nimbus-bootstrap: ${e && e.stack ? e.stack : e}\n`);
  process.exit(EXIT_RUNTIME_API_FAILURE);
});
