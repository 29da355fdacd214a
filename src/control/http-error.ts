/** Error codes the control API returns in `{error: {code, message}}`. Clients may switch on them. */
export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'bad_json'
  | 'too_deep'
  | 'body_too_large'
  | 'request_timeout'
  | 'too_many_connections'
  | 'too_many_subscribers'
  | 'not_found'
  | 'method_not_allowed'
  | 'unsupported_media_type'
  | 'conflict'
  // Inbound media downloads (GET /v1/inbox/:id/media): 502, 502, 504.
  | 'download_failed'
  | 'media_corrupt'
  | 'download_timeout'
  | 'unavailable'
  | 'insufficient_storage'
  | 'internal';

/** An error a handler throws to answer with a given status and code; its message reaches the client. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly headers: Record<string, string>;

  constructor(status: number, code: ApiErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The JSON body of every error response. */
export interface ApiErrorBody {
  error: { code: ApiErrorCode | string; message: string };
}
