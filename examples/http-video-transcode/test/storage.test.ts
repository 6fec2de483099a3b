import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageFromEnv } from '../src/config.js';
import { credentialsFromEnv, credentialsFromHeaders } from '../src/credentials.js';
import { OssStorage } from '../src/oss-storage.js';
import { parseTranscodeRequest } from '../src/request.js';
import { checkBucket, checkKey, LocalStorage } from '../src/storage.js';
import { tempDir } from './helpers.js';

let root: string;

beforeAll(async () => {
  root = await tempDir('storage');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('LocalStorage', () => {
  it('keeps each bucket in a sub-folder and round-trips files', async () => {
    const storage = new LocalStorage(join(root, 'buckets'));
    await writeFile(join(root, 'source.bin'), 'video bytes');
    await storage.upload('videos', 'in/a.mov', join(root, 'source.bin'));
    expect(storage.locate('videos', 'in/a.mov')).toBe(join(root, 'buckets', 'videos', 'in', 'a.mov'));
    await storage.download('videos', 'in/a.mov', join(root, 'copy.bin'));
    expect(await readFile(join(root, 'copy.bin'), 'utf8')).toBe('video bytes');
  });

  it('answers 404 ObjectNotFound for a missing object', async () => {
    const storage = new LocalStorage(join(root, 'buckets'));
    await expect(storage.download('videos', 'in/none.mov', join(root, 'x'))).rejects.toMatchObject({
      code: 'ObjectNotFound',
      statusCode: 404,
    });
    expect(existsSync(join(root, 'x'))).toBe(false);
  });
});

describe('names that could leave the bucket are refused', () => {
  it.each(['../etc', 'Videos', 'a', 'videos/', '-videos', ''])('bucket %j', (bucket) => {
    expect(() => checkBucket(bucket)).toThrow(expect.objectContaining({ code: 'InvalidArgument', statusCode: 400 }));
  });

  it.each(['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\\b', 'a\u0000b', '', 'x'.repeat(1024)])(
    'key %j',
    (key) => {
      expect(() => checkKey(key, 'object')).toThrow(/`object` must be an object key/);
    },
  );

  it.each(['in/cat.mov', 'a', 'out/2024/..hidden', 'données/vidéo.mp4'])('but %j is a fine key', (key) => {
    expect(checkKey(key, 'object')).toBe(key);
  });
});

describe('parseTranscodeRequest', () => {
  it('normalises the format and a trailing slash of output_dir', () => {
    expect(
      parseTranscodeRequest({ bucket: 'videos', object: 'in/a.mov', output_dir: 'out/', dst_format: '.MP4' }),
    ).toEqual({
      bucket: 'videos',
      object: 'in/a.mov',
      output_dir: 'out',
      dst_format: 'mp4',
    });
  });

  it.each([null, [], 'text', 3])('refuses the body %j', (body) => {
    expect(() => parseTranscodeRequest(body)).toThrow(/must be a JSON object/);
  });
});

describe('storageFromEnv', () => {
  it('is local by default, in STORAGE_ROOT', () => {
    const storage = storageFromEnv({ STORAGE_ROOT: join(root, 'r') });
    expect(storage).toBeInstanceOf(LocalStorage);
    expect(storage.locate('videos', 'a.mp4')).toBe(join(root, 'r', 'videos', 'a.mp4'));
  });

  it('is OSS when STORAGE=oss, in the FC region', () => {
    const storage = storageFromEnv({ STORAGE: 'oss', FC_REGION: 'cn-hangzhou' });
    expect(storage).toBeInstanceOf(OssStorage);
    expect(storage.locate('videos', 'a.mp4')).toBe('oss://videos/a.mp4');
  });

  it('says what is wrong', () => {
    expect(() => storageFromEnv({ STORAGE: 's3' })).toThrow("Expected `STORAGE` to be 'local' or 'oss', got `s3`");
    expect(() => storageFromEnv({ STORAGE: 'oss' })).toThrow(/`region` or `endpoint`/);
  });
});

describe('credentials', () => {
  it('come from the FC custom-runtime headers', () => {
    expect(
      credentialsFromHeaders({ 'x-fc-access-key-id': 'id', 'x-fc-access-key-secret': 's', 'x-fc-security-token': 't' }),
    ).toEqual({ accessKeyId: 'id', accessKeySecret: 's', securityToken: 't' });
    expect(credentialsFromHeaders({ 'x-fc-access-key-id': 'id' })).toBeUndefined();
  });

  it('or from the variables FC 3.0 sets for the function role', () => {
    expect(credentialsFromEnv({ ALIBABA_CLOUD_ACCESS_KEY_ID: 'id', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 's' })).toEqual({
      accessKeyId: 'id',
      accessKeySecret: 's',
      securityToken: undefined,
    });
    expect(credentialsFromEnv({})).toBeUndefined();
  });
});
