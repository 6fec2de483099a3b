import { getInvocation } from '@fc-async/core';
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Injectable,
  Module,
  NotFoundException,
  type OnApplicationShutdown,
  Param,
  Post,
  Req,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { RequestIdExceptionFilter } from './errors.js';

/** A provider, injected into the controller below. */
@Injectable()
export class OrdersService implements OnApplicationShutdown {
  private readonly orders = new Map<string, { id: string; item: string }>([['1', { id: '1', item: 'tea' }]]);
  closed = false;

  /** Nest's shutdown hook (`app.close()`): where a real service closes its database pool. */
  onApplicationShutdown() {
    this.closed = true;
  }

  find(id: string) {
    return this.orders.get(id);
  }

  add(item: string) {
    const order = { id: String(this.orders.size + 1), item };
    this.orders.set(order.id, order);
    return order;
  }
}

@Controller()
export class OrdersController {
  // `@Inject(OrdersService)` names the token: tsx and esbuild (`fc-async dev`) emit no decorator
  // metadata, from which Nest would otherwise read the constructor's parameter types.
  constructor(@Inject(OrdersService) private readonly orders: OrdersService) {}

  @Get('orders/:id')
  find(@Param('id') id: string) {
    const order = this.orders.find(id);
    if (!order) throw new NotFoundException(`No order ${id}`);
    return order;
  }

  @Post('orders')
  add(@Body() body: { item?: unknown }) {
    return this.orders.add(String(body.item));
  }

  // `@Req()` is the platform's request (Express's `req`, Fastify's `request`): getInvocation()
  // takes either. Call it with `X-Fc-Invocation-Type: Async`: the caller gets 202 and a task id.
  @Post('thumbnails')
  @HttpCode(200)
  async thumbnail(@Req() req: object, @Body() body: { image: string }) {
    const invocation = getInvocation(req);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the long work
    return {
      made: `${body.image}.thumb.png`,
      type: invocation?.type,
      attempt: invocation?.attempt,
      requestId: invocation?.requestId,
    };
  }

  @Get('crash')
  crash(): never {
    throw new Error('database password is hunter2'); // answered 500 without this message, logged with it
  }
}

@Module({
  controllers: [OrdersController],
  // Every error goes through the filter, whose log line carries the FC request id (./errors.ts).
  providers: [OrdersService, { provide: APP_FILTER, useClass: RequestIdExceptionFilter }],
})
export class AppModule {}
