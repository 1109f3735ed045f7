// Cognito user migration Lambda (Node.js 20+, deployed as index.mjs) that hands the trigger
// event to authswitch's broker (door `cognito`) and returns its answer. Cognito gives the
// trigger 5 s in all; broker.budget_seconds.cognito (4 s) leaves the Lambda time to answer.
// Environment: AUTHSWITCH_URL, e.g. https://login.legacy.example/_authswitch/broker/cognito,
// and AUTHSWITCH_SECRET, the content of broker.secret_file (better: read it from Secrets Manager).
// 200: the event with response.userAttributes, finalUserStatus CONFIRMED, messageAction SUPPRESS.
// Otherwise the Lambda throws: Cognito fails the sign-in ("Incorrect username or password.").
export const handler = async (event) => {
  const response = await fetch(process.env.AUTHSWITCH_URL, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-authswitch-broker-secret": process.env.AUTHSWITCH_SECRET,
    },
    body: JSON.stringify(event),
    signal: AbortSignal.timeout(4500),
  });
  if (response.status === 200) {
    return await response.json();
  }
  throw new Error("Incorrect username or password.");
};
