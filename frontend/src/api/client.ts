/** The typed API client: openapi-fetch over the paths generated from the server's OpenAPI. */
import createClient, { type Middleware } from "openapi-fetch";
import { auth } from "../lib/auth";
import type { paths } from "./schema";

export class ApiError extends Error {
  readonly status: number;
  readonly detail: unknown;
  constructor(status: number, detail: unknown, message?: string) {
    super(message ?? errorMessage(status, detail));
    this.status = status;
    this.detail = detail;
  }
}

/** A readable message from FastAPI's error bodies ({detail: str | {message} | [{msg, loc}]}). */
export function errorMessage(status: number, body: unknown): string {
  const detail = body && typeof body === "object" && "detail" in body ? (body as { detail: unknown }).detail : body;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((d: { msg?: string; loc?: unknown[] }) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg ?? ""}`)
      .join("; ");
  }
  if (detail && typeof detail === "object" && "message" in detail) return String((detail as { message: unknown }).message);
  if (status === 0) return "the server cannot be reached";
  return `request failed (HTTP ${status})`;
}

const authMiddleware: Middleware = {
  onRequest({ request }) {
    if (auth.token) request.headers.set("Authorization", `Bearer ${auth.token}`);
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && !request.url.endsWith("/api/auth/login")) auth.logout("expired");
    return response;
  },
};

export const client = createClient<paths>({ baseUrl: "" });
client.use(authMiddleware);

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The data of an openapi-fetch call, or an ApiError. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let res: Result<T>;
  try {
    res = await call;
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, null);
  }
  if (!res.response.ok) throw new ApiError(res.response.status, res.error);
  return res.data as T;
}
