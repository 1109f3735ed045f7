// Auth0 custom database "Login" script that asks authswitch's broker (door `auth0`).
// Auth0 dashboard > Authentication > Database > your connection > Custom Database:
// turn on "Import Users to Auth0" and paste this as the Login script. Settings (the
// connection's configuration values): AUTHSWITCH_URL, e.g.
// https://login.legacy.example/_authswitch/broker/auth0, and AUTHSWITCH_SECRET, the content of
// broker.secret_file (sent in the header named by broker.secret_header).
// 200: the user's profile (user_id, email, email_verified, names) -> Auth0 imports the user.
// 401 {"error": "wrong_credentials"}: wrong password or unknown user ->
// WrongUsernameOrPasswordError. Anything else (401 "unauthorized": the secret is wrong; 429,
// 5xx, a network error): a plain error, the login fails and shows up in Auth0's logs.
async function login(email, password, callback) {
  const axios = require("axios");
  let response;
  try {
    response = await axios.post(
      configuration.AUTHSWITCH_URL,
      { email: email, password: password },
      {
        headers: { "x-authswitch-broker-secret": configuration.AUTHSWITCH_SECRET },
        timeout: 6000,
        validateStatus: () => true,
      }
    );
  } catch (err) {
    return callback(new Error("password broker unreachable"));
  }
  if (response.status === 200) {
    return callback(null, response.data);
  }
  if (response.status === 401 && response.data && response.data.error === "wrong_credentials") {
    return callback(new WrongUsernameOrPasswordError(email));
  }
  return callback(new Error("password broker answered " + response.status));
}
