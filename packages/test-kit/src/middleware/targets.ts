import Router from '@koa/router';
import express4 from 'express4';
import express5 from 'express5';
import fastify4 from 'fastify4';
import fastify5 from 'fastify5';
import koa2 from 'koa2';
import koa3 from 'koa3';
import { buildExpress } from './express.js';
import { buildFastify } from './fastify.js';
import { buildKoa } from './koa.js';
import type { MiddlewareTarget } from './types.js';

/** Express and Koa have no app to close. */
const EXPRESS = { closesApp: false };
const KOA = { closesApp: false };
/** `listen()` ends with Fastify's `app.close()`. */
const FASTIFY = { closesApp: true };

/**
 * The custom-runtime table: every framework major with the adapter's `fcAsync` middleware or
 * plugin and its `listen()`. The shared middleware, listen and tracing cases run against each.
 */
export const middlewareTargets: MiddlewareTarget[] = [
  { name: 'express 4', ...EXPRESS, build: (spec) => buildExpress(express4, spec) },
  { name: 'express 5', ...EXPRESS, build: (spec) => buildExpress(express5, spec) },
  { name: 'koa 2', ...KOA, build: (spec) => buildKoa(koa2, Router, spec) },
  { name: 'koa 3', ...KOA, build: (spec) => buildKoa(koa3, Router, spec) },
  { name: 'fastify 4', ...FASTIFY, build: (spec) => buildFastify(fastify4, spec) },
  { name: 'fastify 5', ...FASTIFY, build: (spec) => buildFastify(fastify5, spec) },
];

/** The target named `name`, for a child process given the name on its command line. */
export function middlewareTarget(name: string): MiddlewareTarget {
  const target = middlewareTargets.find((t) => t.name === name);
  if (!target) throw new TypeError(`Expected a middleware target name, got \`${name}\``);
  return target;
}
