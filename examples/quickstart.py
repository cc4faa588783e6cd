from cascata import *  # the @inport, @outport, @component decorators and Graph


@component
@inport('data_in', capacity=10)
@inport('constant_in', default=1)
@outport('data_out')
async def NumberIncrementer(data_in, constant_in, data_out):
    await data_out.send(data_in + constant_in)


@component
@inport('range_in')
@outport('data_out')
async def RangeGenerator(range_in, data_out):
    for i in range(range_in):
        await data_out.send(i)


@component
@inport('data_in')
async def DataPrinter(data_in):
    print(data_in)


graph = Graph()
graph.arange = RangeGenerator
graph.add_numbers = NumberIncrementer
graph.print_results = DataPrinter

arange.range_in < 10
add_numbers.constant_in < 5

arange.data_out >> add_numbers.data_in
add_numbers.data_out >> print_results.data_in

graph.run(num_workers=3)
