/** Users, project members and personal access tokens (kraken/api/routes/users.py, members.py, tokens.py). */
import { client, unwrap } from "./client";
import type { components } from "./schema";

type S = components["schemas"];
export type UserRow = S["UserFull"];
export type Member = S["MemberOut"];
export type ApiToken = S["ApiTokenOut"];
export type NewApiToken = S["NewApiTokenOut"];
export type Scope = ApiToken["scopes"][number];

export const listUsers = () => unwrap<UserRow[]>(client.GET("/api/users"));
export const createUser = (body: S["UserIn"]) => unwrap<UserRow>(client.POST("/api/users", { body }));
export const patchUser = (id: number, body: S["UserPatch"]) =>
  unwrap<UserRow>(client.PATCH("/api/users/{user_id}", { params: { path: { user_id: id } }, body }));
export const patchMe = (body: S["OwnPatch"]) => unwrap<UserRow>(client.PATCH("/api/users/me", { body }));

export const listMembers = (projectId: number) =>
  unwrap<Member[]>(client.GET("/api/projects/{project_id}/members", { params: { path: { project_id: projectId } } }));
export const setMembers = (projectId: number, body: S["MemberIn"][]) =>
  unwrap<Member[]>(client.PUT("/api/projects/{project_id}/members", { params: { path: { project_id: projectId } }, body }));

export const listTokens = () => unwrap<ApiToken[]>(client.GET("/api/users/me/tokens"));
export const createToken = (body: S["TokenIn"]) => unwrap<NewApiToken>(client.POST("/api/users/me/tokens", { body }));
export const revokeToken = (id: number) =>
  unwrap<unknown>(client.DELETE("/api/users/me/tokens/{token_id}", { params: { path: { token_id: id } } }));
