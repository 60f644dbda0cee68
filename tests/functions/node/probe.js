// Probe function for the end-to-end suite (nodejs* runtimes). Two handlers, the two styles Lambda supports:
//   probe.handler          async (returns a promise)
//   probe.callbackHandler  callback(err, result)
// The event steers it like tests/functions/python/probe.py: {"sleep": s}, {"print": text},
// {"raise": message}, {"exit": code}; anything else is echoed under "event".
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ENV_ID = crypto.randomBytes(16).toString('hex');
let COUNT = 0;

console.log(`probe init env_id=${ENV_ID} pid=${process.pid}`);

function tmpState(functionName) {
  const file = path.join(os.tmpdir(), `nimbus-probe-${functionName}`);
  let before = null;
  try {
    before = fs.readFileSync(file, 'utf8');
  } catch (e) {
    before = null;
  }
  fs.writeFileSync(file, ENV_ID);
  return before;
}

function facts(event, context, style) {
  return {
    style,
    event,
    context: {
      aws_request_id: context.awsRequestId,
      remaining_ms: context.getRemainingTimeInMillis(),
      function_name: context.functionName,
      function_version: context.functionVersion,
      memory_limit_in_mb: context.memoryLimitInMB,
      invoked_function_arn: context.invokedFunctionArn,
      log_group_name: context.logGroupName,
      log_stream_name: context.logStreamName,
      client_context: context.clientContext === undefined ? null : context.clientContext,
    },
    env: {
      AWS_LAMBDA_FUNCTION_NAME: process.env.AWS_LAMBDA_FUNCTION_NAME,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      AWS_LAMBDA_RUNTIME_API: process.env.AWS_LAMBDA_RUNTIME_API,
      AWS_EXECUTION_ENV: process.env.AWS_EXECUTION_ENV,
      AWS_REGION: process.env.AWS_REGION,
      LAMBDA_TASK_ROOT: process.env.LAMBDA_TASK_ROOT,
      _HANDLER: process.env._HANDLER,
      TZ: process.env.TZ,
    },
    user_env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('PROBE_'))),
    env_id: ENV_ID,
    pid: process.pid,
    count: COUNT,
    tmp_file_env_id: tmpState(context.functionName),
    node_version: process.version,
  };
}

function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

exports.handler = async (event, context) => {
  COUNT += 1;
  const ev = event && typeof event === 'object' ? event : {};
  if (ev.print !== undefined) console.log(ev.print);
  if (ev.sleep !== undefined) await sleep(Number(ev.sleep));
  if (ev.raise !== undefined) throw new Error(ev.raise);
  if (ev.exit !== undefined) process.exit(Number(ev.exit));
  return facts(event, context, 'async');
};

exports.callbackHandler = (event, context, callback) => {
  COUNT += 1;
  const ev = event && typeof event === 'object' ? event : {};
  if (ev.print !== undefined) console.log(ev.print);
  setTimeout(() => {
    if (ev.raise !== undefined) {
      callback(new Error(ev.raise));
      return;
    }
    callback(null, facts(event, context, 'callback'));
  }, ev.sleep !== undefined ? Number(ev.sleep) * 1000 : 5);
};
