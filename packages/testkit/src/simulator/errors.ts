/**
 * Chatwoot's error answers, byte for byte (`request_exception_handler.rb`, `access_token_auth_helper.rb`,
 * `ensure_current_account_helper.rb`, devise_token_auth, Rails' `PublicExceptions`). Route code throws
 * a `ChatwootHttpError`; the request handler renders it.
 */

/** An answer Chatwoot gives instead of the normal response; `body` is serialised as JSON. */
export class ChatwootHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`Chatwoot answered ${status}: ${JSON.stringify(body)}`);
    this.name = "ChatwootHttpError";
  }
}

/** `api_access_token` header present but unknown. */
export const invalidAccessToken = () => new ChatwootHttpError(401, { error: "Invalid Access Token" });

/** No `api_access_token` header: devise_token_auth's `authenticate_user!` answers. */
export const signInRequired = () =>
  new ChatwootHttpError(401, { errors: ["You need to sign in or sign up before continuing."] });

/** The token's user is not a member of `account_id`. */
export const notAccountMember = () =>
  new ChatwootHttpError(401, { error: "You are not authorized to access this account" });

export const accountSuspended = () => new ChatwootHttpError(401, { error: "Account is suspended" });

/** Pundit refusal: Chatwoot answers 401, not 403. */
export const notAuthorized = () =>
  new ChatwootHttpError(401, { error: "You are not authorized to do this action" });

/** `ActiveRecord::RecordNotFound` (unknown account, inbox, ...). */
export const recordNotFound = () => new ChatwootHttpError(404, { error: "Resource could not be found" });

/** `ActiveRecord::RecordInvalid`: full messages joined by ", ", unique attribute names. */
export function recordInvalid(errors: ReadonlyArray<{ attribute: string; fullMessage: string }>) {
  return new ChatwootHttpError(422, {
    message: errors.map((e) => e.fullMessage).join(", "),
    attributes: [...new Set(errors.map((e) => e.attribute))],
  });
}

/** Rails' `PublicExceptions` JSON body, used for routing errors, parse errors and uncaught exceptions. */
export function railsPublicException(status: 400 | 404 | 500) {
  const error = { 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error" }[status];
  return new ChatwootHttpError(status, { status, error });
}
